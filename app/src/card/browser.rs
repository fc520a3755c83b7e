//! What only the browser knows, and the once-a-second refresh. Both are no-ops on the server.

/// `navigator.deviceMemory` in GB where the browser has it (Chromium); `None` elsewhere.
pub fn device_memory_gb() -> Option<f64> {
    #[cfg(feature = "hydrate")]
    {
        let nav = web_sys::window()?.navigator();
        let value = js_sys::Reflect::get(&nav, &"deviceMemory".into()).ok()?;
        value.as_f64().filter(|gb| *gb > 0.0)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        None
    }
}

/// A repeating timer that stops when dropped (gloo-timers in the browser). The browser has one
/// thread, so the wrapper only lets the reactive system store it like any other value.
pub struct Ticker {
    #[cfg(feature = "hydrate")]
    _interval: send_wrapper::SendWrapper<gloo_timers::callback::Interval>,
}

impl Ticker {
    /// Calls `tick` every `ms` milliseconds until the ticker is dropped.
    #[allow(unused_variables)]
    pub fn every(ms: u32, tick: impl FnMut() + 'static) -> Ticker {
        Ticker {
            #[cfg(feature = "hydrate")]
            _interval: send_wrapper::SendWrapper::new(gloo_timers::callback::Interval::new(ms, tick)),
        }
    }
}
