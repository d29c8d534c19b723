//! `exporters:`: the load balancer (`loadbalancing` / `load_balancing`) and plain `otlp`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::components::{Components, section};
use super::errors::Errors;
use super::model::{
    CoalesceLimits, DnsRecordType, DnsResolver, Exporter, HostPort, LoadBalancing, OtlpExporter, Resolver, RoutingKey,
};
use super::otlp::{lb_protocol, otlp_exporter};
use super::parse::Field;
use super::resilience::{resilience, retry_on_failure, sending_queue};
use super::values::{EndpointRules, check_host_name, parse_endpoint};

/// Backend port when a static hostname or the DNS resolver gives none.
pub const DEFAULT_BACKEND_PORT: u16 = 4317;
/// Default DNS re-resolution interval.
pub const DEFAULT_DNS_INTERVAL: Duration = Duration::from_secs(5);
/// Default DNS query timeout.
pub const DEFAULT_DNS_TIMEOUT: Duration = Duration::from_secs(1);

/// Load balancer keys of the collector that are not implemented yet.
const LB_UNSUPPORTED: &[&str] = &["timeout"];

/// Port of `resolver.dns.nameserver` when none is given.
pub const DEFAULT_NAMESERVER_PORT: u16 = 53;

const NAMESERVER: EndpointRules = EndpointRules { listen: false, default_port: Some(DEFAULT_NAMESERVER_PORT) };

const STATIC_HOST: EndpointRules = EndpointRules { listen: false, default_port: Some(DEFAULT_BACKEND_PORT) };

pub(crate) fn exporters(field: &Field<'_>, errs: &mut Errors) -> Components<Exporter> {
    section(field, errs, |id, body, errs| match id.kind.as_str() {
        "loadbalancing" | "load_balancing" => load_balancing(body, errs).map(Exporter::LoadBalancing),
        "otlp" => Some(Exporter::Otlp(otlp_exporter(body, errs))),
        other => body.fail(errs, format!("exporter type `{other}` is not supported; use `loadbalancing` or `otlp`")),
    })
}

fn load_balancing(body: &Field<'_>, errs: &mut Errors) -> Option<LoadBalancing> {
    let mut fields = body.fields(errs);
    let key = fields.take("routing_key");
    let attributes = fields.take("routing_attributes");
    let routing_key = routing_key_with_attributes(body, key, attributes, errs);
    let protocol = protocol(&fields.take_or_null("protocol"), errs);
    let resolver = fields.required("resolver", errs).and_then(|r| resolver(&r, errs));
    let retry = retry_on_failure(&fields.take_or_null("retry_on_failure"), errs);
    let queue = sending_queue(&fields.take_or_null("sending_queue"), errs);
    let resilience = resilience(&fields.take_or_null("resilience"), errs);
    let coalesce = coalesce(&fields.take_or_null("coalesce"), errs);
    fields.unsupported(LB_UNSUPPORTED, errs);
    fields.finish(errs);
    Some(LoadBalancing { routing_key, protocol, resolver: resolver?, retry, queue, resilience, coalesce })
}

/// `coalesce` (our extension): `max_in_flight` (0: never coalesce) and `max_size_mib`.
fn coalesce(field: &Field<'_>, errs: &mut Errors) -> CoalesceLimits {
    let mut limits = CoalesceLimits::default();
    let mut fields = field.fields(errs);
    let in_flight = fields.take("max_in_flight").and_then(|f| f.uint(errs, 0, 1 << 16));
    let mib = fields.take("max_size_mib").and_then(|f| f.uint(errs, 1, 4095));
    fields.finish(errs);
    limits.max_in_flight = in_flight.and_then(|n| usize::try_from(n).ok()).unwrap_or(limits.max_in_flight);
    limits.max_bytes = mib.and_then(|m| usize::try_from(m << 20).ok()).unwrap_or(limits.max_bytes);
    limits
}

/// `protocol`: only `otlp`, which is read even when absent (its TLS rule applies).
fn protocol(field: &Field<'_>, errs: &mut Errors) -> OtlpExporter {
    let mut fields = field.fields(errs);
    let otlp = lb_protocol(&fields.take_or_null("otlp"), errs);
    fields.finish(errs);
    otlp
}

/// `routing_key`, and `routing_attributes`, which goes with `routing_key: attributes` only.
fn routing_key_with_attributes(
    body: &Field<'_>,
    key: Option<Field<'_>>,
    attributes: Option<Field<'_>>,
    errs: &mut Errors,
) -> Option<RoutingKey> {
    let parsed = key.as_ref().and_then(|k| k.parsed(errs, routing_key));
    match (parsed, attributes) {
        (Some(RoutingKey::Attributes(_)), Some(list)) => routing_attributes(&list, errs).map(RoutingKey::Attributes),
        (Some(RoutingKey::Attributes(_)), None) => {
            body.fail(errs, "`routing_key: attributes` needs `routing_attributes`, e.g. [tenant, http.route]")
        }
        (_, Some(list)) => list.fail(errs, "`routing_attributes` applies only to `routing_key: attributes`"),
        (parsed, None) => parsed,
    }
}

/// `routing_attributes`: attribute keys, at least one, none twice.
fn routing_attributes(field: &Field<'_>, errs: &mut Errors) -> Option<Vec<String>> {
    let items = field.list(errs)?;
    if items.is_empty() {
        return field.fail(errs, "list at least one attribute key");
    }
    let mut names: Vec<String> = Vec::new();
    for item in items {
        let name = item.string(errs)?.to_string();
        if names.contains(&name) {
            item.report(errs, format!("attribute `{name}` is listed more than once"));
        }
        names.push(name);
    }
    Some(names)
}

const ROUTING_KEYS: &str = "`traceID`, `service`, `resource`, `metric`, `streamID` or `attributes`";

fn routing_key(text: &str) -> Result<RoutingKey, String> {
    match text {
        "traceID" => Ok(RoutingKey::TraceId),
        "service" => Ok(RoutingKey::Service),
        "resource" => Ok(RoutingKey::Resource),
        "metric" => Ok(RoutingKey::Metric),
        "streamID" => Ok(RoutingKey::StreamId),
        "attributes" => Ok(RoutingKey::Attributes(Vec::new())),
        _ => Err(format!("unknown routing_key `{text}`; use {ROUTING_KEYS}")),
    }
}

fn resolver(field: &Field<'_>, errs: &mut Errors) -> Option<Resolver> {
    let mut fields = field.fields(errs);
    let static_ = fields.take("static").map(|s| static_resolver(&s, errs));
    let dns = fields.take("dns").map(|d| dns_resolver(&d, errs));
    let refused = fields.unsupported(&["k8s", "aws_cloud_map"], errs);
    fields.finish(errs);
    match (static_, dns) {
        (Some(resolver), None) | (None, Some(resolver)) => resolver,
        (Some(_), Some(_)) => field.fail(errs, "set only one of `static` or `dns`"),
        (None, None) if refused > 0 => None,
        (None, None) => field.fail(errs, "one of `static` or `dns` is required"),
    }
}

fn static_resolver(field: &Field<'_>, errs: &mut Errors) -> Option<Resolver> {
    let mut fields = field.fields(errs);
    let list = fields.take_or_null("hostnames");
    fields.finish(errs);
    let items = list.list(errs)?;
    if items.is_empty() {
        return list.fail(errs, "list at least one backend, e.g. `collector-1:4317`");
    }
    let parse = |s: &str| parse_endpoint(s, STATIC_HOST);
    let hosts: Vec<(Field<'_>, HostPort)> =
        items.into_iter().filter_map(|item| item.parsed(errs, parse).map(|h| (item, h))).collect();
    check_duplicates(&hosts, errs);
    let hostnames = hosts.into_iter().map(|(_, host)| host).collect();
    Some(Resolver::Static { hostnames })
}

/// A backend listed twice would get twice the share of the ring: almost surely a mistake.
fn check_duplicates(hosts: &[(Field<'_>, HostPort)], errs: &mut Errors) {
    for (i, (item, host)) in hosts.iter().enumerate() {
        if let Some((first, _)) = hosts[..i].iter().find(|(_, h)| h == host) {
            item.report(errs, format!("backend `{host}` is already listed at `{}`", first.path));
        }
    }
}

fn dns_resolver(field: &Field<'_>, errs: &mut Errors) -> Option<Resolver> {
    let mut fields = field.fields(errs);
    let hostname = fields.required("hostname", errs).and_then(|h| h.parsed(errs, dns_name));
    let port_field = fields.take("port");
    let port = port_field.as_ref().and_then(|p| p.port(errs));
    let interval = fields.take("interval").and_then(|i| i.duration(errs));
    let timeout = fields.take("timeout").and_then(|t| t.duration(errs));
    let nameserver = fields.take("nameserver").map(|n| n.parsed(errs, nameserver));
    let record_type = fields.take("record_type").map(|r| r.parsed(errs, record_type));
    fields.finish(errs);
    let record_type = record_type.unwrap_or(Some(DnsRecordType::Ip))?;
    let nameserver = nameserver.map(|n| n.ok_or(())).transpose().ok()?;
    check_srv_port(port_field.as_ref(), record_type, errs)?;
    Some(Resolver::Dns(DnsResolver {
        hostname: hostname?,
        port: port.unwrap_or(DEFAULT_BACKEND_PORT),
        interval: interval.unwrap_or(DEFAULT_DNS_INTERVAL),
        timeout: timeout.unwrap_or(DEFAULT_DNS_TIMEOUT),
        nameserver,
        record_type,
    }))
}

/// SRV records carry the ports; a `port` beside them would be silently ignored.
fn check_srv_port(port: Option<&Field<'_>>, record_type: DnsRecordType, errs: &mut Errors) -> Option<()> {
    match port {
        Some(port) if record_type == DnsRecordType::Srv => {
            port.fail(errs, "SRV records carry their own ports; remove `port` or use `record_type: ip`")
        }
        _ => Some(()),
    }
}

fn record_type(text: &str) -> Result<DnsRecordType, String> {
    match text {
        "ip" => Ok(DnsRecordType::Ip),
        "srv" => Ok(DnsRecordType::Srv),
        _ => Err(format!("unknown record_type `{text}`; use `ip` (A and AAAA) or `srv`")),
    }
}

/// `ip:port`, `[v6]:port` or a bare IP (port 53).
fn nameserver(text: &str) -> Result<SocketAddr, String> {
    let hp = parse_endpoint(text, NAMESERVER)?;
    let ip: IpAddr = hp.host.parse().map_err(|_| {
        format!("`{text}`: give the name server's IP address, e.g. `127.0.0.1:8600`; a name cannot be resolved here")
    })?;
    Ok(SocketAddr::new(ip, hp.port))
}

fn dns_name(text: &str) -> Result<String, String> {
    if text.contains(':') {
        return Err(format!("`{text}`: give the host name only and the port in `port`"));
    }
    check_host_name(text).map(|()| text.to_string())
}
