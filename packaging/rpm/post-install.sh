# Like the collector's rpm: register the unit but leave it stopped and disabled; the operator
# edits /etc/otlp-gateway/config.yaml, then runs `systemctl enable --now otlp-gateway`.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
exit 0
