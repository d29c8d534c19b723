//! Command-line options of the harness (cargo bench passes `--bench`, ignored).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

#[derive(Debug, Clone)]
pub struct Opts {
    pub quick: bool,
    /// Seconds per loadgen run.
    pub secs: f64,
    /// Rounds of the full-load, half-load and fixed-rate runs (tables quote medians).
    pub reps: usize,
    /// The fixed rate of the CPU-per-span runs, spans/s.
    pub rate: u64,
    pub bin: PathBuf,
    pub nginx: PathBuf,
    /// The Collector peer (OTLP receiver + `loadbalancing` exporter), built by
    /// `benches/otelcol/build.sh`; skipped with a note when missing.
    pub collector: PathBuf,
    pub proxy_cpu: usize,
    pub load_cpu: usize,
    /// The sinks' CPU; `None`: loadgen's. On a machine with a CPU to spare, giving the sinks
    /// their own keeps loadgen's and the sinks' queueing out of the latency figures.
    pub sink_cpu: Option<usize>,
    /// Where benchmarks.md and bench/*.svg go.
    pub out: PathBuf,
    /// The arguments after `--`, for the command line quoted in the report.
    pub args: Vec<String>,
}

impl Opts {
    pub fn parse() -> Result<Opts> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut o = Opts {
            quick: false,
            secs: 0.0,
            reps: 0,
            rate: 200_000,
            bin: PathBuf::from(env!("CARGO_BIN_EXE_otlp-gateway")),
            nginx: PathBuf::from("/usr/sbin/nginx"),
            collector: root.join("target/otelcol/otelcol-lb"),
            proxy_cpu: 0,
            load_cpu: 1,
            sink_cpu: None,
            out: PathBuf::new(),
            args: std::env::args().skip(1).filter(|a| a != "--bench").collect(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut value = || args.next().with_context(|| format!("{a} needs a value"));
            match a.as_str() {
                "--quick" => o.quick = true,
                "--bench" => {}
                "--secs" => o.secs = value()?.parse()?,
                "--reps" => o.reps = value()?.parse()?,
                "--rate" => o.rate = value()?.parse()?,
                "--bin" => o.bin = value()?.into(),
                "--nginx" => o.nginx = value()?.into(),
                "--collector" => o.collector = value()?.into(),
                "--proxy-cpu" => o.proxy_cpu = value()?.parse()?,
                "--load-cpu" => o.load_cpu = value()?.parse()?,
                "--sink-cpu" => o.sink_cpu = Some(value()?.parse()?),
                "--out" => o.out = value()?.into(),
                other => bail!("unknown option {other}"),
            }
        }
        o.fill_defaults(&root);
        Ok(o)
    }

    fn fill_defaults(&mut self, root: &std::path::Path) {
        if self.secs == 0.0 {
            self.secs = if self.quick { 3.0 } else { 10.0 };
        }
        if self.reps == 0 {
            self.reps = if self.quick { 1 } else { 3 };
        }
        if self.out.as_os_str().is_empty() {
            let target = std::env::var_os("CARGO_TARGET_DIR").map_or(root.join("target"), PathBuf::from);
            self.out = if self.quick { target.join("e2e-quick") } else { root.join("docs") };
        }
    }

    /// The CPU the sinks run on.
    pub fn sinks_cpu(&self) -> usize {
        self.sink_cpu.unwrap_or(self.load_cpu)
    }

    /// The markdown file the section goes into.
    pub fn doc(&self) -> PathBuf {
        self.out.join("benchmarks.md")
    }

    /// Offered rates of the latency-versus-load sweep: a geometric series from 50k spans/s
    /// (×2; ×4 in quick mode) up to `max`, and `max` itself.
    pub fn sweep(&self, max: f64) -> Vec<u64> {
        let (mut rate, step) = if self.quick { (100_000.0, 4.0) } else { (50_000.0, 2.0) };
        let mut rates = Vec::new();
        while rate < max * 0.9 {
            rates.push(rate as u64);
            rate *= step;
        }
        rates.push(max.round() as u64);
        rates
    }

    pub fn describe(&self) -> String {
        let mode = if self.quick { "quick" } else { "full" };
        format!(
            "{mode} mode, {} s per run, {} rounds, fixed rate {} spans/s, binary {}",
            self.secs,
            self.reps,
            self.rate,
            self.bin.display()
        )
    }

    /// The command that reproduces this run, with the harness's nice value if not 0.
    pub fn command(&self) -> String {
        let nice = crate::measure::own_nice();
        let prefix = if nice != 0 { format!("nice -n {nice} ") } else { String::new() };
        let args = if self.args.is_empty() { String::new() } else { format!(" -- {}", self.args.join(" ")) };
        format!("{prefix}cargo bench --bench e2e{args}")
    }
}
