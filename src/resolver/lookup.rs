//! One refresh: the DNS queries for the configured name, through hickory-resolver.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_lite::future::zip;
use hickory_resolver::config::{NameServerConfigGroup, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::{IntoName, ResolveError, TokioResolver};
use tokio::task::{JoinError, JoinSet};

use super::{LookupError, SpawnError};
use crate::config::{DnsRecordType, DnsResolver};

/// The hickory settings for `cfg`: /etc/resolv.conf, or only `nameserver` when it is set.
pub(crate) fn settings(cfg: &DnsResolver) -> Result<(ResolverConfig, ResolverOpts), SpawnError> {
    let (config, mut opts) = match cfg.nameserver {
        Some(addr) => (direct(addr), direct_opts()),
        None => {
            hickory_resolver::system_conf::read_system_conf().map_err(|e| SpawnError::SystemConfig(e.to_string()))?
        }
    };
    opts.timeout = cfg.timeout;
    // One try per query: the whole refresh is bounded by `timeout` anyway, and the next
    // refresh is the retry.
    opts.attempts = 1;
    // No cache: a cached answer would hide a change until its TTL runs out.
    opts.cache_size = 0;
    Ok((config, opts))
}

/// One name server, over UDP (and TCP for truncated answers), with no search domains.
fn direct(addr: SocketAddr) -> ResolverConfig {
    let servers = NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true);
    ResolverConfig::from_parts(None, Vec::new(), servers)
}

/// A direct server is asked even for names in /etc/hosts.
fn direct_opts() -> ResolverOpts {
    let mut opts = ResolverOpts::default();
    opts.use_hosts_file = ResolveHosts::Never;
    opts
}

/// Runs the queries of one refresh.
pub(crate) struct Lookup {
    resolver: TokioResolver,
    hostname: String,
    port: u16,
    record_type: DnsRecordType,
    timeout: Duration,
}

impl Lookup {
    /// Must be called inside the tokio runtime that will run the lookups.
    pub(crate) fn new(cfg: &DnsResolver, config: ResolverConfig, opts: ResolverOpts) -> Lookup {
        let builder = TokioResolver::builder_with_config(config, TokioConnectionProvider::default());
        let resolver = builder.with_options(opts).build();
        let DnsResolver { hostname, port, record_type, timeout, .. } = cfg.clone();
        Lookup { resolver, hostname, port, record_type, timeout }
    }

    /// The backends named by DNS now, unsorted; any failed query fails the whole refresh, so a
    /// partial answer never removes backends.
    pub(crate) async fn resolve(&self) -> Result<Vec<SocketAddr>, LookupError> {
        self.resolver.clear_cache();
        let work = async {
            match self.record_type {
                DnsRecordType::Ip => addresses(self.resolver.clone(), self.hostname.clone(), self.port).await,
                DnsRecordType::Srv => self.srv().await,
            }
        };
        tokio::time::timeout(self.timeout, work).await.map_err(|_| LookupError::Timeout(self.timeout))?
    }

    /// SRV records of the hostname, then every target's addresses (all at once) at the record's
    /// port. Dropping this future (timeout, stop) aborts the target lookups with the `JoinSet`.
    async fn srv(&self) -> Result<Vec<SocketAddr>, LookupError> {
        let records = answered(self.resolver.srv_lookup(self.hostname.as_str()).await, "SRV")?;
        let mut lookups = JoinSet::new();
        // Target "." means "no service here" (RFC 2782).
        for srv in records.iter().flat_map(|l| l.iter()).filter(|s| !s.target().is_root()) {
            lookups.spawn(addresses(self.resolver.clone(), srv.target().clone(), srv.port()));
        }
        let mut backends = Vec::new();
        while let Some(joined) = lookups.join_next().await {
            let lost = |e: JoinError| Err(LookupError::Query { record: "SRV target", reason: e.to_string() });
            backends.extend(joined.unwrap_or_else(lost)?);
        }
        Ok(backends)
    }
}

/// A and AAAA records of `name`, asked at once, each address at `port`.
async fn addresses<N: IntoName + Clone>(
    resolver: TokioResolver,
    name: N,
    port: u16,
) -> Result<Vec<SocketAddr>, LookupError> {
    let (v4, v6) = zip(resolver.ipv4_lookup(name.clone()), resolver.ipv6_lookup(name)).await;
    let v4 = answered(v4, "A")?.into_iter().flat_map(|l| l.into_iter().map(|a| IpAddr::V4(a.0)));
    let v6 = answered(v6, "AAAA")?.into_iter().flat_map(|l| l.into_iter().map(|a| IpAddr::V6(a.0)));
    Ok(v4.chain(v6).map(|ip| SocketAddr::new(ip, port)).collect())
}

/// A query's records; `None` when the server answered that there are none (NXDOMAIN or an
/// empty NOERROR). Any other outcome (SERVFAIL, REFUSED, timeout, I/O) is a failure.
fn answered<T>(result: Result<T, ResolveError>, record: &'static str) -> Result<Option<T>, LookupError> {
    match result {
        Ok(records) => Ok(Some(records)),
        Err(e) if is_no_records(&e) => Ok(None),
        Err(e) => Err(LookupError::Query { record, reason: e.to_string() }),
    }
}

fn is_no_records(e: &ResolveError) -> bool {
    let kind = e.proto().map(|p| p.kind());
    matches!(
        kind,
        Some(ProtoErrorKind::NoRecordsFound { response_code: ResponseCode::NoError | ResponseCode::NXDomain, .. })
    )
}
