#!/bin/sh
# Testbed VM stand-in for apt-get/apt (bind-mounted over /usr/bin/apt-get and /usr/bin/apt inside the
# VM's mount namespace only). The VM has no route to a mirror and shares /usr and /var/lib/dpkg with the
# host, so this behaves like a reachable mirror that carries exactly the packages installed on the host,
# all of which are "already the newest version":
#   update                         -> success, nothing changes
#   install PKG...                 -> success if every PKG is installed on the host (dpkg), nothing
#                                     changes (no postinst runs: services are not enabled or started);
#                                     otherwise "E: Unable to locate package PKG", exit 100, as apt does
#   upgrade/dist-upgrade/...       -> success, nothing to do
#   remove/purge/anything else     -> error, exit 100 (the VM cannot change the shared /usr)
prog=$(basename "$0")
cmd=
pkgs=
skip_next=0
for a in "$@"; do
    if [ "$skip_next" = 1 ]; then skip_next=0; continue; fi
    case "$a" in
        -o|-c|-t|--option|--config-file|--target-release|--default-release) skip_next=1 ;;
        -*) ;;
        *) if [ -z "$cmd" ]; then cmd=$a; else pkgs="$pkgs $a"; fi ;;
    esac
done

reading() {
    echo "Reading package lists..."
    echo "Building dependency tree..."
    echo "Reading state information..."
}

case "$cmd" in
    update)
        echo "Hit:1 http://testbed-mirror.invalid/debian bookworm InRelease"
        echo "Reading package lists..."
        exit 0
        ;;
    install)
        reading
        missing=
        out=
        for p in $pkgs; do
            case "$p" in *-) continue ;; esac   # "pkg-" means remove in apt syntax: ignore
            want=
            case "$p" in *=*) want=${p#*=}; p=${p%%=*} ;; esac
            p=${p%%/*}
            name=${p%%:*}
            st=$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null)
            case "$st" in
                "install ok installed "*)
                    ver=${st#install ok installed }
                    if [ -n "$want" ] && [ "$want" != "$ver" ]; then
                        echo "E: Version '$want' for '$name' was not found" >&2
                        exit 100
                    fi
                    out="$out$name is already the newest version ($ver).
"
                    ;;
                *) missing="$missing $name" ;;
            esac
        done
        if [ -n "$missing" ]; then
            for m in $missing; do echo "E: Unable to locate package $m" >&2; done
            exit 100
        fi
        printf '%s' "$out"
        echo "0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded."
        exit 0
        ;;
    upgrade|dist-upgrade|full-upgrade|autoremove|autoclean|clean|check)
        reading
        echo "Calculating upgrade... Done"
        echo "0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded."
        exit 0
        ;;
    "")
        echo "$prog (testbed mirror stand-in): no command given" >&2
        exit 100
        ;;
    *)
        echo "E: $prog $cmd is not available in the testbed VM (it shares /usr with the host)" >&2
        exit 100
        ;;
esac
