# The service account, as in /usr/lib/sysusers.d/otlp-gateway.conf (Fedora's sysusers compat).
getent group otlp-gateway >/dev/null || groupadd -r otlp-gateway
getent passwd otlp-gateway >/dev/null || \
    useradd -r -g otlp-gateway -d / -s /sbin/nologin -c "OTLP gateway" otlp-gateway
exit 0
