# Sourced by the bench scripts: the gateway config they share.
# gateway_yaml PREFIX [SERVICE_EXTRA] writes gw.yaml: gRPC on 127.0.0.1:${PREFIX}317, trace-ID
# routing to 3 sinks on 127.0.0.1:${PREFIX}401-403, `compression: none`; SERVICE_EXTRA is
# appended under `service:` (e.g. a `runtime:` block).
gateway_yaml() {
  cat > gw.yaml <<YAML
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:${1}317
exporters:
  loadbalancing:
    protocol:
      otlp:
        compression: none
        tls:
          insecure: true
    resolver:
      static:
        hostnames: [127.0.0.1:${1}401, 127.0.0.1:${1}402, 127.0.0.1:${1}403]
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [loadbalancing]
${2:-}
YAML
}
