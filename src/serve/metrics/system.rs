//! TorchServe's system metrics (its metric_collector.py, which uses psutil): CPU, memory and the
//! disk of `/`, sampled at start and every `metric_time_interval` seconds, with psutil's formulas.

/// One sample, in TorchServe's units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sample {
    /// Percent of all cores busy since the previous sample (since boot for the first).
    pub(crate) cpu_percent: f64,
    pub(crate) memory_used_mb: f64,
    pub(crate) memory_available_mb: f64,
    pub(crate) memory_percent: f64,
    pub(crate) disk_used_gb: f64,
    pub(crate) disk_available_gb: f64,
    pub(crate) disk_percent: f64,
}

/// Takes samples; remembers the CPU counters of the last one.
#[derive(Default)]
pub(crate) struct Sampler {
    cpu: Option<CpuTimes>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct CpuTimes {
    busy: u64,
    total: u64,
}

const MB: f64 = 1024.0 * 1024.0;
const GB: f64 = MB * 1024.0;

impl Sampler {
    /// A sample, or None where /proc or statvfs cannot be read (not Linux).
    pub(crate) fn sample(&mut self) -> Option<Sample> {
        let cpu = cpu_times(&std::fs::read_to_string("/proc/stat").ok()?)?;
        let since = self.cpu.unwrap_or(CpuTimes { busy: 0, total: 0 });
        self.cpu = Some(cpu);
        let total = cpu.total.saturating_sub(since.total);
        let cpu_percent = if total == 0 {
            0.0
        } else {
            round(cpu.busy.saturating_sub(since.busy) as f64 * 100.0 / total as f64)
        };
        let memory = memory(&std::fs::read_to_string("/proc/meminfo").ok()?)?;
        let disk = disk(std::path::Path::new("/"))?;
        Some(Sample {
            cpu_percent,
            memory_used_mb: round(memory.used / MB),
            memory_available_mb: round(memory.available / MB),
            memory_percent: round(memory.percent),
            disk_used_gb: round(disk.used / GB),
            disk_available_gb: round(disk.free / GB),
            disk_percent: round(disk.percent),
        })
    }
}

/// One decimal, as TorchServe's collector rounds.
fn round(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// The first line of /proc/stat: user nice system idle iowait irq softirq steal (guest time is
/// already in user and nice); idle and iowait are not busy.
fn cpu_times(stat: &str) -> Option<CpuTimes> {
    let fields: Vec<u64> = stat
        .lines()
        .find(|l| l.starts_with("cpu "))?
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    let total: u64 = fields.iter().sum();
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some(CpuTimes {
        busy: total - idle,
        total,
    })
}

struct Memory {
    used: f64,
    available: f64,
    percent: f64,
}

/// psutil.virtual_memory() on Linux: used = total - free - buffers - cached (cached with
/// SReclaimable), percent = (total - available) / total.
fn memory(meminfo: &str) -> Option<Memory> {
    let kib = |key: &str| -> Option<f64> {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?
            .split_whitespace()
            .next()?
            .parse::<f64>()
            .ok()
            .map(|v| v * 1024.0)
    };
    let total = kib("MemTotal")?;
    let free = kib("MemFree")?;
    let available = kib("MemAvailable").unwrap_or(free);
    let cached = kib("Cached").unwrap_or(0.0) + kib("SReclaimable").unwrap_or(0.0);
    let mut used = total - free - kib("Buffers").unwrap_or(0.0) - cached;
    if used < 0.0 {
        used = total - free;
    }
    Some(Memory {
        used,
        available,
        percent: if total > 0.0 {
            (total - available) * 100.0 / total
        } else {
            0.0
        },
    })
}

struct Disk {
    used: f64,
    free: f64,
    percent: f64,
}

/// psutil.disk_usage(path): used = (blocks - bfree) * frsize, free = bavail * frsize (what an
/// unprivileged user may use), percent = used / (used + free).
fn disk(path: &std::path::Path) -> Option<Disk> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statvfs the call fills.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    let size = stat.f_frsize as f64;
    let used = (stat.f_blocks as f64 - stat.f_bfree as f64) * size;
    let free = stat.f_bavail as f64 * size;
    Some(Disk {
        used,
        free,
        percent: if used + free > 0.0 {
            used * 100.0 / (used + free)
        } else {
            0.0
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_busy_is_all_but_idle_and_iowait() {
        let times = cpu_times("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3\n").unwrap();
        assert_eq!(
            times,
            CpuTimes {
                busy: 150,
                total: 1000
            }
        );
        assert!(cpu_times("nothing").is_none());
    }

    #[test]
    fn memory_as_psutil_counts_it() {
        let memory = memory(
            "MemTotal: 1000 kB\nMemFree: 200 kB\nMemAvailable: 600 kB\nBuffers: 50 kB\nCached: 250 kB\nSReclaimable: 50 kB\n",
        )
        .unwrap();
        assert_eq!(memory.used, 450.0 * 1024.0);
        assert_eq!(memory.available, 600.0 * 1024.0);
        assert!((memory.percent - 40.0).abs() < 1e-9);
    }

    #[test]
    fn a_sample_of_this_machine_is_in_range() {
        let mut sampler = Sampler::default();
        let first = sampler.sample().unwrap();
        let second = sampler.sample().unwrap();
        for s in [first, second] {
            assert!((0.0..=100.0).contains(&s.cpu_percent), "{s:?}");
            assert!((0.0..=100.0).contains(&s.memory_percent), "{s:?}");
            assert!((0.0..=100.0).contains(&s.disk_percent), "{s:?}");
            assert!(s.memory_available_mb > 0.0 && s.disk_used_gb > 0.0, "{s:?}");
        }
    }
}
