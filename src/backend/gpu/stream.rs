//! The upload and two-slot pipeline both the scorer and the Gram product drive: work is cut into
//! chunks of rows, and each chunk's device buffers come in two slots. While the device runs
//! chunk `c` in one slot, the host encodes and uploads chunk `c + 1` into the other and submits
//! it, and only then waits for chunk `c`'s read-back, so the device always has the next chunk
//! queued. Read-backs are handed over in chunk order, so what the host does with them does not
//! depend on timing.

use std::ops::Range;
use std::time::{Duration, Instant};

use super::context::{GpuContext, PendingRead};
use crate::error::{Error, Result};

/// One slot: the caller's per-chunk buffers and the read-back buffer they are copied into.
pub(super) struct Slot<S> {
    /// The caller's buffers and bind groups.
    pub(super) buffers: S,
    /// Mapped for reading once the chunk has run.
    pub(super) staging: wgpu::Buffer,
}

/// Two slots on one device.
pub(super) struct Stream<S> {
    ctx: GpuContext,
    slots: [Slot<S>; 2],
}

/// A chunk submitted and not yet read back.
struct InFlight {
    slot: usize,
    rows: Range<usize>,
    bytes: u64,
    read: PendingRead,
}

/// Where a run's wall-clock time went, summed over its chunks: `[record, execute, read-back]`
/// (see [`Stream::run`]).
pub(super) type Split = [Duration; 3];

impl<S> Stream<S> {
    /// Two slots built by `make` (given `"slot 0"` or `"slot 1"`, for labels), each with a
    /// read-back buffer of `staging_bytes` labelled `{prefix} read-back (slot k)`.
    pub(super) fn new(
        ctx: &GpuContext,
        prefix: &str,
        staging_bytes: u64,
        mut make: impl FnMut(&str) -> S,
    ) -> Self {
        let mut slot = |name: &str| Slot {
            buffers: make(name),
            staging: ctx.buffer(
                &format!("{prefix} read-back ({name})"),
                staging_bytes,
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            ),
        };
        let slots = [slot("slot 0"), slot("slot 1")];
        Stream {
            ctx: ctx.clone(),
            slots,
        }
    }

    /// Runs rows `0..total` in chunks of `step` (at least 1) through the two slots.
    ///
    /// `record` writes a chunk's inputs to its slot, records its dispatches and the copies of
    /// its results into the slot's staging buffer, and returns how many bytes of it to read
    /// back; `read` gets each chunk's rows and those bytes, in chunk order. `what` names the
    /// work in labels and errors.
    ///
    /// The time is split as: record, the host encoding and writing a chunk's inputs with
    /// `Queue::write_buffer` (a host-side copy; the transfer happens at submission) and
    /// recording its commands; execute, the host blocked waiting for a read-back buffer to be
    /// mapped (the transfer, the dispatches and the copies, less what overlapped with the next
    /// chunk's recording); read-back, `read` and the unmapping.
    ///
    /// # Errors
    /// [`Error::Gpu`] when wgpu reports a failure.
    pub(super) fn run(
        &self,
        what: &str,
        total: usize,
        step: usize,
        mut record: impl FnMut(&Slot<S>, Range<usize>, &mut wgpu::CommandEncoder) -> u64,
        mut read: impl FnMut(Range<usize>, &[u8]),
    ) -> Result<Split> {
        let mut split = [Duration::ZERO; 3];
        let mut pending: Option<InFlight> = None;
        let step = step.max(1);
        for (c, first) in (0..total).step_by(step).enumerate() {
            let rows = first..total.min(first + step);
            let slot = c % 2;
            let sl = &self.slots[slot];
            let t = Instant::now();
            let mut encoder =
                self.ctx
                    .device()
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some(&format!("poolrank {what}")),
                    });
            let bytes = record(sl, rows.clone(), &mut encoder);
            split[0] += t.elapsed();
            let next = InFlight {
                slot,
                rows,
                bytes,
                read: self.ctx.submit_and_map(encoder, &sl.staging, bytes),
            };
            // The device has this chunk queued behind the previous one while the host reads
            // the previous one back.
            if let Some(done) = pending.replace(next) {
                self.finish(what, done, &mut split, &mut read)?;
            }
        }
        if let Some(done) = pending {
            self.finish(what, done, &mut split, &mut read)?;
        }
        Ok(split)
    }

    /// Waits for a submitted chunk and hands its read-back to `read`.
    fn finish(
        &self,
        what: &str,
        chunk: InFlight,
        split: &mut Split,
        read: &mut impl FnMut(Range<usize>, &[u8]),
    ) -> Result<()> {
        let waiting = Instant::now();
        self.ctx.wait_mapped(chunk.read)?;
        let done = Instant::now();
        split[1] += done - waiting;
        let staging = &self.slots[chunk.slot].staging;
        {
            let view = staging
                .slice(..chunk.bytes)
                .get_mapped_range()
                .map_err(|e| Error::gpu("reading the read-back buffer", e))?;
            read(chunk.rows, &view);
        }
        staging.unmap();
        let checked = self.ctx.check(what);
        split[2] += done.elapsed();
        checked
    }
}
