//! `run --events FILE`: the JSON Lines event stream, written as events are recorded; and the
//! reading side, for the commands that accept `--events-file` besides `--report-file`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::anyhow;
use sandbox_runtime::report::stream::{verify_events, EventStream};
use sandbox_runtime::report::Report;
use sandbox_runtime::JsonLinesSink;

/// The sink `run --events` writes through: the file opened (and emptied) once, each line
/// one write, flushed before the run goes on.
pub type EventsSink = Arc<JsonLinesSink<File>>;

/// Opens the events file for the run: checked like every output file (no final symlink
/// followed, a regular file only), then emptied.
pub fn open(path: &Path) -> anyhow::Result<EventsSink> {
    let file = crate::output::open_for_writing(path, "events")?;
    Ok(Arc::new(JsonLinesSink::new(file)))
}

/// Reads an events file and checks its hash chain.
pub fn read_stream(path: &Path) -> anyhow::Result<EventStream> {
    let text = crate::bounded::read_text(path, "events file", crate::bounded::MAX_REPORT_BYTES)?;
    verify_events(&text).map_err(|e| anyhow!("events file `{}`: {e}", path.display()))
}

/// The report to work on, checked: from `--report-file`, or made from `--events-file`'s
/// stream. Also the file it came from.
pub fn read_verified(
    report_file: Option<&Path>,
    events_file: Option<&Path>,
) -> anyhow::Result<(Report, PathBuf)> {
    match (report_file, events_file) {
        (Some(path), _) => {
            let text = crate::bounded::read_text(path, "report", crate::bounded::MAX_REPORT_BYTES)?;
            let report = sandbox_runtime::verify_report(&text)
                .map_err(|e| anyhow!("report `{}`: {e}", path.display()))?;
            Ok((report, path.to_owned()))
        }
        (None, Some(path)) => Ok((read_stream(path)?.to_report(), path.to_owned())),
        (None, None) => Err(anyhow!("give `--report-file` or `--events-file`")),
    }
}
