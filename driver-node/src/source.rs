//! Telemetry sources behind one trait: the live sim (Windows), a `.ibt` recording, or the
//! synthetic driver. Sources are untimed — each frame carries its session time — and the recorder
//! paces them; a live source blocks until its next sample instead. Reads no env vars.

use schema::wire::TelemetryFrame;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Read(String),
}

/// What a source says about the session it reads.
#[derive(Debug, Clone, Default)]
pub struct SourceInfo {
    pub kind: &'static str,
    pub track: Option<String>,
    pub car: Option<String>,
    /// Frames in total, when known (recordings).
    pub frames: Option<u64>,
}

pub trait TelemetrySource: Send {
    /// The next frame; `None` when the source has ended (a recording's last row).
    fn next_frame(&mut self) -> Result<Option<TelemetryFrame>, SourceError>;

    fn info(&self) -> SourceInfo;

    /// Whether the source runs in real time by itself (live sim) or must be paced.
    fn is_live(&self) -> bool {
        false
    }

    /// Skips the first `n` frames (a replay resuming after a restart).
    fn skip(&mut self, n: u64) -> Result<(), SourceError> {
        for _ in 0..n {
            if self.next_frame()?.is_none() {
                break;
            }
        }
        Ok(())
    }
}

impl TelemetrySource for crate::synthetic::Synthetic {
    fn next_frame(&mut self) -> Result<Option<TelemetryFrame>, SourceError> {
        Ok(Some(crate::synthetic::Synthetic::next_frame(self)))
    }

    fn info(&self) -> SourceInfo {
        SourceInfo {
            kind: "synthetic",
            track: Some(format!("PitBox Ring ({:.0} m)", self.track_length())),
            car: Some("GT3 (synthetic)".into()),
            frames: None,
        }
    }
}

/// A `.ibt` recording as a source: its rows, converted, in order; optionally only the first
/// `laps` laps.
pub struct IbtSource {
    ibt: crate::ibt::Ibt<crate::ibt::FileSource>,
    converter: crate::ibt::SampleConverter,
    next: usize,
    end: usize,
    info: SourceInfo,
    fallback: chrono::DateTime<chrono::Utc>,
}

impl IbtSource {
    pub fn open(path: &std::path::Path, laps: Option<u32>) -> Result<IbtSource, SourceError> {
        let ibt = crate::ibt::Ibt::open(path)
            .map_err(|e| SourceError::Unavailable(format!("{}: {e}", path.display())))?;
        let converter = crate::ibt::SampleConverter::new(&ibt);
        let mut end = ibt.record_count();
        if let Some(n) = laps {
            let all = crate::ibt::laps(&ibt).map_err(|e| SourceError::Read(e.to_string()))?;
            // Stop after the last row of the n-th lap that the recording holds.
            if let Some(lap) = all.get(n as usize) {
                end = lap.first_row;
            }
        }
        let session = ibt.session_info().ok();
        let info = SourceInfo {
            kind: "ibt",
            track: session.as_ref().and_then(|s| s.track().map(str::to_owned)),
            car: session.as_ref().and_then(|s| s.car()),
            frames: Some(end as u64),
        };
        Ok(IbtSource { ibt, converter, next: 0, end, info, fallback: chrono::Utc::now() })
    }
}

impl TelemetrySource for IbtSource {
    fn next_frame(&mut self) -> Result<Option<TelemetryFrame>, SourceError> {
        if self.next >= self.end {
            return Ok(None);
        }
        let row = self.ibt.row(self.next).map_err(|e| SourceError::Read(e.to_string()))?;
        self.next += 1;
        Ok(Some(self.converter.frame(&row, None, self.fallback)))
    }

    fn info(&self) -> SourceInfo {
        self.info.clone()
    }

    fn skip(&mut self, n: u64) -> Result<(), SourceError> {
        self.next = self.next.saturating_add(usize::try_from(n).unwrap_or(usize::MAX)).min(self.end);
        Ok(())
    }
}
