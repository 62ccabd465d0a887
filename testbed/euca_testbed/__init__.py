"""A local Eucalyptus made of real parts: moto's EC2 API behind a Eucalyptus 4.4 personality,
instances that boot as network-namespace VMs (vm.py), and an optional Secret Service keyring.

Module map:
  cli          command line (`testbed up|down|env|status|stats|credentials|config|fault|purge|exec|image-tar|selftest`)
  daemon       state root, state.json, detached processes and their pids
  personality  the HTTP proxy in front of moto (auth, accounts, binding, faults, stats, rewriting, control API)
  sigv4        AWS Signature Version 4 verification
  binding      the EC2 query parameters Eucalyptus 4.4 binds, per action
  ec2xml       EC2 XML responses: errors, instance rewriting
  instances    instance records, the EDGE address plan, VM lifecycle and reconcile loop
  machines     the one adapter over vm.py (the VM layer)
  keyring      D-Bus session bus + gnome-keyring-daemon for Secret Service tests
"""
