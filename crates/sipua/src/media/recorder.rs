//! Recording a call to WAV without touching the disk on the pacing clock: frames go through a
//! bounded channel to a writer thread; when the disk falls behind, frames are dropped and
//! counted rather than delaying every call's audio.

use super::wav::WavWriter;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::thread::JoinHandle;

/// Frames buffered for the writer (2 s at 20 ms).
const QUEUE: usize = 100;

/// What a finished recording holds.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingInfo {
    /// The WAV file.
    pub path: String,
    /// How much audio it holds.
    pub duration_ms: u64,
    /// Frames the writer could not keep up with, left out of the file.
    pub dropped_frames: u64,
}

struct Chunk {
    samples: [i16; 640],
    len: usize,
}

/// A running recording.
pub struct Recorder {
    tx: Option<SyncSender<Chunk>>,
    writer: Option<JoinHandle<Result<u64, String>>>,
    path: PathBuf,
    channels: u16,
    dropped: u64,
}

impl Recorder {
    /// Creates the file (errors name the path) and starts the writer thread.
    pub fn start(path: PathBuf, channels: u16, rate: u32) -> Result<Self, String> {
        let mut writer = WavWriter::create(&path, channels, rate).map_err(|e| e.to_string())?;
        let (tx, rx) = sync_channel::<Chunk>(QUEUE);
        let handle = std::thread::Builder::new()
            .name("sip-native-recorder".into())
            .spawn(move || {
                let mut frames = 0u64;
                while let Ok(chunk) = rx.recv() {
                    writer
                        .write_frame(&chunk.samples[..chunk.len])
                        .map_err(|e| e.to_string())?;
                    frames += 1;
                }
                writer.finalize().map_err(|e| e.to_string())?;
                Ok(frames)
            })
            .map_err(|e| format!("cannot start the recorder for {}: {e}", path.display()))?;
        Ok(Self {
            tx: Some(tx),
            writer: Some(handle),
            path,
            channels,
            dropped: 0,
        })
    }

    /// Queues one 20 ms frame: mixed (`channels == 1`) or remote/local interleaved.
    pub fn push(&mut self, remote: &[i16], local: &[i16]) {
        let n = remote.len().min(local.len()).min(320);
        let mut chunk = Chunk {
            samples: [0; 640],
            len: 0,
        };
        if self.channels == 2 {
            for i in 0..n {
                chunk.samples[2 * i] = remote[i];
                chunk.samples[2 * i + 1] = local[i];
            }
            chunk.len = 2 * n;
        } else {
            for i in 0..n {
                chunk.samples[i] = remote[i].saturating_add(local[i]);
            }
            chunk.len = n;
        }
        if let Some(tx) = &self.tx {
            if let Err(TrySendError::Full(_)) = tx.try_send(chunk) {
                self.dropped += 1;
            }
        }
    }

    /// Closes the file; blocks until the writer has flushed (a few ms).
    pub fn finish(mut self) -> RecordingInfo {
        self.tx.take();
        let frames = self
            .writer
            .take()
            .and_then(|h| h.join().ok())
            .and_then(Result::ok)
            .unwrap_or(0);
        RecordingInfo {
            path: self.path.display().to_string(),
            duration_ms: frames * 20,
            dropped_frames: self.dropped,
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(h) = self.writer.take() {
            let _ = h.join();
        }
    }
}
