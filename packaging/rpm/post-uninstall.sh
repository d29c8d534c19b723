# After an upgrade ($1 >= 1) restart a running gateway on the new binary; keep it stopped otherwise.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart otlp-gateway.service >/dev/null 2>&1 || :
    fi
fi
exit 0
