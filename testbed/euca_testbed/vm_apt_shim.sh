#!/bin/sh
# Testbed VM stand-in for apt-get/apt (bind-mounted over /usr/bin/apt-get and /usr/bin/apt inside the
# VM's mount namespace only). The VM has no route to a mirror and shares /usr and /var/lib/dpkg with the
# host. Which mirror it plays is read from /etc/euca-testbed/mirror (read-only in the VM, written by
# vm.py at every boot from `testbed config --mirror`; one line "MODE [SECONDS]"; absent: ok):
#
# ok (default): a reachable mirror that carries exactly the packages installed on the host, all of
#   which are "already the newest version":
#   update                         -> success, nothing changes
#   install PKG...                 -> success if every PKG is installed on the host (dpkg), nothing
#                                     changes (no postinst runs: services are not enabled or started);
#                                     otherwise "E: Unable to locate package PKG", exit 100, as apt does
# newer: a reachable mirror that carries a newer build (VERSION+testbed1) of every package installed
#   on the host (for `docker euca upgrade`):
#   install PKG... (installed)     -> with -s/--simulate/--dry-run: "Inst PKG [OLD] (NEW …)", nothing
#                                     changes; without: "Unpacking PKG (NEW) over (OLD)", and the VM's
#                                     dpkg state (its own overlay) records NEW (no postinst runs,
#                                     no file changes: /usr is the host's); a second run then says
#                                     "already the newest version (NEW)"
#   otherwise as ok
# missing: a reachable mirror with no packages at all:
#   update                         -> success
#   install PKG...                 -> "E: Unable to locate package PKG" for every PKG, exit 100, at once
# hang: no route to any mirror; every connection apt makes times out after SECONDS (default 120):
#   update                         -> blocks SECONDS, then "Could not connect ... connection timed out" /
#                                     "Temporary failure resolving" and, as apt does for such transient
#                                     network failures, "W: Some index files failed to download" and
#                                     exit 0 (exit 100 with --error-on=any or APT::Update::Error-Mode=any)
#   install PKG...                 -> blocks SECONDS (downloading), then "E: Failed to fetch ...",
#                                     "E: Unable to fetch some archives", exit 100 (even for a package
#                                     the host has: the image's engine need not be the distribution's)
# In every mode:
#   upgrade/dist-upgrade/...       -> success, nothing to do
#   remove/purge/anything else     -> error, exit 100 (the VM cannot change the shared /usr)
#   install --only-upgrade PKG     -> "Skipping PKG, it is not installed …", exit 0, when PKG is not
#                                     installed (as apt does)
#   each run is logged to /var/log/euca-testbed-mirror.log ("start" and "end" lines with the mirror
#   mode, the arguments, the exit code and the seconds it took), so a test can tell whether (and how
#   long) anything in the VM asked for a package.
# A hanging run ends early on SIGTERM/SIGINT/SIGHUP (exit 130, its sleep killed), as apt would.
prog=$(basename "$0")
mirror_file=/etc/euca-testbed/mirror
log=/var/log/euca-testbed-mirror.log
mode=ok
hang=120
if [ -r "$mirror_file" ]; then
    read -r m s _ < "$mirror_file" 2>/dev/null
    case "$m" in ok|missing|hang|newer) mode=$m ;; esac
    case "$s" in ''|*[!0-9.]*) ;; *) hang=$s ;; esac
fi
cmd=
pkgs=
error_on_any=0
simulate=0
only_upgrade=0
# What a "newer" mirror upgraded in this VM: "PKG VERSION" lines, in the VM's own dpkg overlay.
upgraded=/var/lib/dpkg/euca-testbed-upgraded
skip_next=
for a in "$@"; do
    if [ -n "$skip_next" ]; then
        [ "$skip_next" = o ] && case "$a" in APT::Update::Error-Mode=any) error_on_any=1 ;; esac
        skip_next=
        continue
    fi
    case "$a" in
        -o|--option) skip_next=o ;;
        -c|-t|--config-file|--target-release|--default-release) skip_next=1 ;;
        --error-on=any) error_on_any=1 ;;
        -s|--simulate|--dry-run|--just-print|--no-act|--recon) simulate=1 ;;
        --only-upgrade) only_upgrade=1 ;;
        -oAPT::Update::Error-Mode=any|--option=APT::Update::Error-Mode=any) error_on_any=1 ;;
        -*) ;;
        *) if [ -z "$cmd" ]; then cmd=$a; else pkgs="$pkgs $a"; fi ;;
    esac
done

t0=$(date +%s)
note() { echo "$(date '+%Y-%m-%dT%H:%M:%S') $prog[$$] $*" 2>/dev/null >> "$log"; }
shown=$mode
[ "$mode" = hang ] && shown="hang (${hang} s)"
note "start mirror=$shown: $prog $*"
finish() {
    note "end mirror=$shown: $prog $cmd -> exit $1 after $(( $(date +%s) - t0 )) s"
    exit "$1"
}

codename=$(. /etc/os-release 2>/dev/null; echo "${VERSION_CODENAME:-bookworm}")
host=testbed-mirror.invalid
sec=testbed-security.invalid
noconn="Could not connect to $host:80 (203.0.113.80), connection timed out"
noname="Temporary failure resolving '$sec'"

# the connection attempts of a mirror without a route: SECONDS of nothing
hang_now() {
    sleep "$hang" &
    sp=$!
    trap 'kill $sp 2>/dev/null; note "end mirror=$shown: $prog $cmd -> interrupted after $(( $(date +%s) - t0 )) s"; exit 130' INT TERM HUP
    wait "$sp"
    trap - INT TERM HUP
}

reading() {
    echo "Reading package lists..."
    echo "Building dependency tree..."
    echo "Reading state information..."
}

case "$cmd" in
    update)
        case "$mode" in
            hang)
                hang_now
                echo "Err:1 http://$host/debian $codename InRelease"
                echo "  $noconn"
                echo "Err:2 http://$sec/debian-security $codename-security InRelease"
                echo "  $noname"
                echo "Reading package lists..."
                if [ "$error_on_any" = 1 ]; then w=E; else w=W; fi
                echo "$w: Failed to fetch http://$host/debian/dists/$codename/InRelease  $noconn" >&2
                echo "$w: Failed to fetch http://$sec/debian-security/dists/$codename-security/InRelease  $noname" >&2
                echo "$w: Some index files failed to download. They have been ignored, or old ones used instead." >&2
                [ "$error_on_any" = 1 ] && finish 100
                finish 0
                ;;
            missing)
                echo "Get:1 http://$host/debian $codename InRelease [2 kB]"
                echo "Reading package lists..."
                finish 0
                ;;
            *)
                echo "Hit:1 http://$host/debian $codename InRelease"
                echo "Reading package lists..."
                finish 0
                ;;
        esac
        ;;
    install)
        reading
        missing=
        new=
        out=
        upgrades=
        for p in $pkgs; do
            case "$p" in *-) continue ;; esac   # "pkg-" means remove in apt syntax: ignore
            want=
            case "$p" in *=*) want=${p#*=}; p=${p%%=*} ;; esac
            p=${p%%/*}
            name=${p%%:*}
            if [ "$mode" = missing ]; then missing="$missing $name"; continue; fi
            if [ "$mode" = hang ]; then new="$new $name"; continue; fi
            st=$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null)
            case "$st" in
                "install ok installed "*)
                    ver=${st#install ok installed }
                    up=$(sed -n "s/^$name //p" "$upgraded" 2>/dev/null | tail -n 1)
                    [ -n "$up" ] && ver=$up
                    if [ "$mode" = newer ] && [ -z "$up" ]; then
                        upgrades="$upgrades $name=$ver"
                        continue
                    fi
                    if [ -n "$want" ] && [ "$want" != "$ver" ]; then
                        echo "E: Version '$want' for '$name' was not found" >&2
                        finish 100
                    fi
                    out="$out$name is already the newest version ($ver).
"
                    ;;
                *)
                    if [ "$only_upgrade" = 1 ]; then
                        out="${out}Skipping $name, it is not installed and only upgrades are requested.
"
                    else
                        missing="$missing $name"
                    fi
                    ;;
            esac
        done
        if [ -n "$missing" ]; then
            for m in $missing; do echo "E: Unable to locate package $m" >&2; done
            finish 100
        fi
        if [ -n "$new" ]; then
            n=0
            echo "The following NEW packages will be installed:"
            echo " $new"
            for m in $new; do n=$((n + 1)); done
            echo "0 upgraded, $n newly installed, 0 to remove and 0 not upgraded."
            hang_now
            i=0
            for m in $new; do
                i=$((i + 1))
                echo "Err:$i http://$host/debian $codename/main amd64 $m amd64"
                echo "  $noconn"
            done
            for m in $new; do
                echo "E: Failed to fetch http://$host/debian/pool/main/$m.deb  $noconn" >&2
            done
            echo "E: Unable to fetch some archives, maybe run apt-get update or try with --fix-missing?" >&2
            finish 100
        fi
        printf '%s' "$out"
        if [ -n "$upgrades" ]; then
            n=0
            for u in $upgrades; do n=$((n + 1)); done
            [ "$simulate" = 1 ] || echo "The following packages will be upgraded:"
            for u in $upgrades; do
                name=${u%%=*} old=${u#*=}
                new="$old+testbed1"
                if [ "$simulate" = 1 ]; then
                    echo "Inst $name [$old] ($new $host [amd64])"
                else
                    echo "Preparing to unpack .../${name}_${new}_amd64.deb ..."
                    echo "Unpacking $name ($new) over ($old) ..."
                    echo "$name $new" >> "$upgraded" || finish 100
                    echo "Setting up $name ($new) ..."
                fi
            done
            echo "$n upgraded, 0 newly installed, 0 to remove and 0 not upgraded."
            finish 0
        fi
        echo "0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded."
        finish 0
        ;;
    upgrade|dist-upgrade|full-upgrade|autoremove|autoclean|clean|check)
        reading
        echo "Calculating upgrade... Done"
        echo "0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded."
        finish 0
        ;;
    "")
        echo "$prog (testbed mirror stand-in): no command given" >&2
        finish 100
        ;;
    *)
        echo "E: $prog $cmd is not available in the testbed VM (it shares /usr with the host)" >&2
        finish 100
        ;;
esac
