//! How many vCPUs a container's sandbox gets: its CPU allowance from the
//! spec (CFS quota over period, rounded up, and the cpuset's size), or
//! every host CPU when the spec sets neither.

use oci_spec::runtime::Spec;

/// vCPUs for `spec` (0: no allowance in the spec, use the host's CPUs).
pub fn allowance(spec: &Spec) -> u32 {
    let Some(cpu) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()).and_then(|r| r.cpu().as_ref()) else {
        return 0;
    };
    let quota = match (cpu.quota(), cpu.period()) {
        (Some(q), Some(p)) if q > 0 && p > 0 => Some(u32::try_from((q as u64).div_ceil(p)).unwrap_or(u32::MAX)),
        (Some(q), None) if q > 0 => Some(u32::try_from((q as u64).div_ceil(100_000)).unwrap_or(u32::MAX)),
        _ => None,
    };
    let set = cpu.cpus().as_deref().and_then(cpuset_size);
    match (quota, set) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => 0,
    }
}

/// Number of CPUs in a cpuset list such as `0-3,6` (None if malformed or
/// empty; validation reports those).
fn cpuset_size(list: &str) -> Option<u32> {
    let mut n = 0u32;
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?),
            None => {
                let v = part.parse::<u32>().ok()?;
                (v, v)
            }
        };
        n = n.checked_add(hi.checked_sub(lo)?.checked_add(1)?)?;
    }
    (n > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(cpu: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "linux": {"resources": {"cpu": cpu}}
        }))
        .unwrap()
    }

    #[test]
    fn quota_and_cpuset_give_the_allowance() {
        assert_eq!(allowance(&spec(serde_json::json!({"quota": 150000, "period": 100000}))), 2);
        assert_eq!(allowance(&spec(serde_json::json!({"quota": 50000, "period": 100000}))), 1);
        assert_eq!(allowance(&spec(serde_json::json!({"quota": -1, "period": 100000}))), 0);
        assert_eq!(allowance(&spec(serde_json::json!({"cpus": "0-3,6"}))), 5);
        assert_eq!(allowance(&spec(serde_json::json!({"cpus": "1", "quota": 400000, "period": 100000}))), 1);
        assert_eq!(allowance(&spec(serde_json::json!({"shares": 512}))), 0);
        assert_eq!(allowance(&spec(serde_json::json!({"cpus": "3-1"}))), 0);
    }
}
