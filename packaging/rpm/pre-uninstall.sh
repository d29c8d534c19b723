# $1 is 0 on erase, 1 on upgrade: stop and disable only when the package goes away.
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
    systemctl --no-reload disable --now otlp-gateway.service >/dev/null 2>&1 || :
fi
exit 0
