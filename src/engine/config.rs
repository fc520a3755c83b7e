//! How the engine behaves: its settings, with the product's defaults. Below every other part
//! of the engine (they read it; it reads none of them but the retry policy and the segment rule).

use super::retry::RetryPolicy;
use super::segments;
use std::path::PathBuf;
use std::time::Duration;

/// How the engine behaves. Tests shrink the timings; the product uses [`EngineConfig::new`].
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub models_dir: PathBuf,
    pub retry: RetryPolicy,
    /// A transfer with no byte for this long is treated as a dropped connection.
    pub stall_timeout: Duration,
    /// How often bytes are written to the row.
    pub progress_interval: Duration,
    pub connect_timeout: Duration,
    /// A bandwidth limit in bytes per second, shared by every download; `None` for none.
    pub max_rate: Option<u64>,
    /// Connections one download may open at once (1: always one stream).
    pub connections: usize,
    /// How a large file is cut into segments for those connections.
    pub segment_rule: segments::SegmentRule,
    /// The other connections open only while the first delivers less than this (bytes per
    /// second); `None` opens them all at once.
    pub fast_stream_bps: Option<u64>,
    /// How often a runner renews its claim on the row, writes its speed and reads the status.
    pub heartbeat: Duration,
    /// How long a claim holds without renewal: then another process may take the download over.
    pub lease: Duration,
    /// The Hugging Face hub: its token goes with requests to the hub's own address (a hub
    /// model's `resolve` URL), never past its redirect to the CDN. `None`: no token is sent.
    pub hub: Option<crate::hub_settings::HubSettings>,
}

/// Seconds without a byte before a connection is retried, unless configured: long enough for a
/// busy server or a Wi-Fi hiccup, short enough that a dead connection is noticed.
pub const DEFAULT_STALL_TIMEOUT_SECS: u64 = 30;

/// Connections per download unless configured: see BENCHMARKS.md for how it was chosen.
pub const DEFAULT_CONNECTIONS: usize = 8;

/// One stream this fast (2 Gbit/s, faster than most disks) needs no help: see BENCHMARKS.md.
pub const FAST_STREAM_BPS: u64 = 250_000_000;

impl EngineConfig {
    /// The product's settings for a models folder.
    pub fn new(models_dir: PathBuf) -> Self {
        EngineConfig {
            models_dir,
            retry: RetryPolicy::default(),
            stall_timeout: Duration::from_secs(DEFAULT_STALL_TIMEOUT_SECS),
            progress_interval: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(30),
            max_rate: None,
            connections: DEFAULT_CONNECTIONS,
            segment_rule: segments::SegmentRule::default(),
            fast_stream_bps: Some(FAST_STREAM_BPS),
            heartbeat: Duration::from_secs(1),
            lease: Duration::from_secs(10),
            hub: None,
        }
    }
}
