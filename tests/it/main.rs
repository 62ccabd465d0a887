//! One integration binary (as cargo's testsuite does): every file here is a module, and
//! `support` holds the shared set-up. These tests use the real programs: the docker CLI,
//! dockerd, openssl, and (from the testbed issues on) the local Eucalyptus testbed.

mod after_down;
mod aws;
mod bad_input;
mod bench_figures;
mod bench_ls;
mod completion;
mod concurrency;
mod contexts;
mod create_rm;
mod credentials;
mod doctor;
mod engine_install;
mod fault_matrix;
mod fleet;
mod hardening;
mod iam_policy;
mod import_machine;
mod kill_matrix;
mod lifecycle;
mod mtls;
mod offline_mirror;
mod ownership;
mod package;
mod plugin_protocol;
mod provision_flow;
mod prune;
mod secrets_scan;
mod store_concurrency;
mod support;
mod swarm;
mod terminal_output;
mod testbed_itself;
mod tls_endpoint;
mod upgrade;
