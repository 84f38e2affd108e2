//! Memory, table and instance ceilings through Wasmtime's `ResourceLimiter`. Growing past the
//! policy's `memory_bytes` ends the run with `memory_limit`: the limiter returns [`LimitHit`],
//! which the runtime recognises when the call returns.

use wasmtime::ResourceLimiter;

/// The error the limiter raises; it ends the run as `memory_limit`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{resource} grow to {asked} refused: the policy allows {limit}")]
pub struct LimitHit {
    /// What tried to grow: `memory` or `table`.
    pub resource: &'static str,
    /// The total the grow asked for across the run: bytes for memory, elements for tables.
    pub asked: u64,
    /// The ceiling, in the same unit as `asked`.
    pub limit: u64,
}

/// One run's `ResourceLimiter`: keeps running totals of linear memory (bytes) and table
/// elements across all of the instance's memories and tables, so several small memories
/// cannot add up past the ceiling, and records the peak memory for the report.
#[derive(Debug)]
pub struct RunLimiter {
    memory_limit: u64,
    table_elements_limit: u64,
    /// Bytes of linear memory across all memories of the run.
    memory_total: u64,
    /// Elements across all tables of the run.
    table_total: u64,
    pub(crate) peak_memory: u64,
    pub(crate) hit: Option<LimitHit>,
}

impl RunLimiter {
    /// A limiter allowing `memory_limit` bytes of linear memory and `table_elements_limit`
    /// table elements in total, with nothing grown yet.
    pub fn new(memory_limit: u64, table_elements_limit: u64) -> RunLimiter {
        RunLimiter {
            memory_limit,
            table_elements_limit,
            memory_total: 0,
            table_total: 0,
            peak_memory: 0,
            hit: None,
        }
    }

    /// Adds a growth to a running total, or refuses it (ending the run) past the limit.
    fn grow(
        &mut self,
        resource: &'static str,
        current: usize,
        desired: usize,
    ) -> wasmtime::Result<bool> {
        let (total, limit) = match resource {
            "memory" => (&mut self.memory_total, self.memory_limit),
            _ => (&mut self.table_total, self.table_elements_limit),
        };
        let asked = total.saturating_add((desired as u64).saturating_sub(current as u64));
        if asked > limit {
            let hit = LimitHit {
                resource,
                asked,
                limit,
            };
            self.hit = Some(hit.clone());
            return Err(wasmtime::Error::new(hit));
        }
        *total = asked;
        self.peak_memory = self.peak_memory.max(self.memory_total);
        Ok(true)
    }
}

impl ResourceLimiter for RunLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow("memory", current, desired)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow("table", current, desired)
    }

    fn instances(&self) -> usize {
        sandbox_policy::DEFAULT_INSTANCES as usize
    }

    // Counts stay at Wasmtime's defaults: what bounds tables and memories is the total of
    // their sizes, checked in the growth callbacks above.
    fn tables(&self) -> usize {
        10_000
    }

    fn memories(&self) -> usize {
        10_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_past_the_ceiling_is_an_error_that_names_the_size_asked() {
        let mut limiter = RunLimiter::new(2 * 65536, 10);
        assert!(limiter.memory_growing(0, 65536, None).unwrap());
        assert!(limiter.memory_growing(65536, 2 * 65536, None).unwrap());
        let err = limiter
            .memory_growing(2 * 65536, 3 * 65536, None)
            .unwrap_err();
        let hit = err.downcast_ref::<LimitHit>().unwrap();
        assert_eq!((hit.asked, hit.limit), (3 * 65536, 2 * 65536));
        assert_eq!(limiter.peak_memory, 2 * 65536);
        assert!(limiter.table_growing(0, 10, None).unwrap());
        assert!(limiter.table_growing(10, 11, None).is_err());
    }
}
