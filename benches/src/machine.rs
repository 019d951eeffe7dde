//! A one-line description of the machine a benchmark ran on.

use std::fs;

/// Logical CPUs available to this process.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The CPU model from `/proc/cpuinfo`, when readable.
pub fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string())
}

/// The kernel release from `/proc/sys/kernel/osrelease`, when readable.
pub fn kernel() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!("Linux {}", s.trim()))
        .unwrap_or_else(|_| std::env::consts::OS.to_string())
}

/// Total memory from `/proc/meminfo`, in GiB, when readable.
pub fn memory_gib() -> Option<f64> {
    let info = fs::read_to_string("/proc/meminfo").ok()?;
    let kib: f64 = info
        .lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / (1024.0 * 1024.0))
}

/// `nproc`, CPU model, memory and kernel in one line.
pub fn describe() -> String {
    let memory = memory_gib()
        .map(|g| format!(", {g:.0} GiB RAM"))
        .unwrap_or_default();
    format!("{} × {}{}, {}", cpus(), cpu_model(), memory, kernel())
}

/// The mount holding `path` as `mount point (fstype, device)`, from `/proc/mounts`.
pub fn filesystem(path: &std::path::Path) -> String {
    let path = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let Ok(mounts) = fs::read_to_string("/proc/mounts") else {
        return "unknown filesystem".to_string();
    };
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (device, point, fstype) = (f.next()?, f.next()?, f.next()?);
            path.starts_with(point)
                .then(|| (point.len(), format!("{point} ({fstype} on {device})")))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, m)| m)
        .unwrap_or_else(|| "unknown filesystem".to_string())
}

/// The 1-minute load average from `/proc/loadavg`, when readable: other work on the
/// machine skews measurements.
pub fn load_average() -> Option<f64> {
    fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Share of the last 60 s in which some task waited on I/O (`/proc/pressure/io`,
/// `some avg60`, in percent), when readable: other processes' disk traffic skews
/// durable-commit measurements.
pub fn io_pressure() -> Option<f64> {
    let psi = fs::read_to_string("/proc/pressure/io").ok()?;
    let some = psi.lines().find(|l| l.starts_with("some"))?;
    some.split_whitespace()
        .find_map(|f| f.strip_prefix("avg60="))?
        .parse()
        .ok()
}
