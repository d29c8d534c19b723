"""Sends traces, metrics and logs with the official OpenTelemetry Python SDK exporters.

Usage: otlp_clients.py MODE ENDPOINT TAG [CA_FILE]
  MODE: grpc | grpc-gzip | http | http-gzip | grpc-tls | http-tls
  ENDPOINT: host:port of the gateway's OTLP/gRPC or OTLP/HTTP receiver
  TAG: a word put in every item's name, so the caller can tell runs apart
  CA_FILE: for the -tls modes, the PEM CA that issued the gateway's certificate

Every item is built by the SDK (tracer, meter, logger) and exported with the SDK's OTLP
exporter. Prints what was sent as one JSON line; exits 1 if any export did not succeed.
"""

import json
import sys

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

SPANS, LOGS, POINTS = 25, 15, 4


def exporters(mode, endpoint, ca_file):
    gzip = mode.endswith("-gzip")
    tls = mode.endswith("-tls")
    if mode.startswith("grpc"):
        import grpc
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        kw = dict(endpoint=f"http://{endpoint}", insecure=True, timeout=10)
        if tls:
            with open(ca_file, "rb") as f:
                credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
            kw = dict(endpoint=f"https://{endpoint}", insecure=False, credentials=credentials, timeout=10)
        kw["compression"] = grpc.Compression.Gzip if gzip else grpc.Compression.NoCompression
        return OTLPSpanExporter(**kw), OTLPMetricExporter(**kw), OTLPLogExporter(**kw)
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    comp = Compression.Gzip if gzip else Compression.NoCompression
    base = f"https://{endpoint}/v1/" if tls else f"http://{endpoint}/v1/"
    kw = dict(compression=comp, timeout=10, certificate_file=ca_file) if tls else dict(compression=comp, timeout=10)
    return (
        OTLPSpanExporter(endpoint=base + "traces", **kw),
        OTLPMetricExporter(endpoint=base + "metrics", **kw),
        OTLPLogExporter(endpoint=base + "logs", **kw),
    )


def spans(resource, tag):
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("conformance")
    for i in range(SPANS):
        with tracer.start_as_current_span(f"span-{tag}-{i}", attributes={"i": i, "tag": tag}):
            pass
    return memory.get_finished_spans()


def metrics(resource, tag):
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    counter = provider.get_meter("conformance").create_counter(f"requests-{tag}")
    for i in range(POINTS):
        counter.add(i + 1, {"route": f"/r{i}"})
    return reader.get_metrics_data()


def logs(resource, tag):
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = provider.get_logger("conformance")
    for i in range(LOGS):
        logger.emit(body=f"log-{tag}-{i}", attributes={"i": i})
    return memory.get_finished_logs()


def main():
    mode, endpoint, tag = sys.argv[1:4]
    ca_file = sys.argv[4] if len(sys.argv) > 4 else None
    resource = Resource.create({"service.name": f"conformance-{tag}"})
    span_exporter, metric_exporter, log_exporter = exporters(mode, endpoint, ca_file)
    results = {
        "traces": span_exporter.export(spans(resource, tag)) == SpanExportResult.SUCCESS,
        "metrics": metric_exporter.export(metrics(resource, tag)) == MetricExportResult.SUCCESS,
        "logs": log_exporter.export(logs(resource, tag)) == LogRecordExportResult.SUCCESS,
    }
    sent = {
        "spans": [f"span-{tag}-{i}" for i in range(SPANS)],
        "metric": f"requests-{tag}",
        "points": POINTS,
        "logs": [f"log-{tag}-{i}" for i in range(LOGS)],
        "results": results,
    }
    print(json.dumps(sent))
    for exporter in (span_exporter, metric_exporter, log_exporter):
        exporter.shutdown()
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
