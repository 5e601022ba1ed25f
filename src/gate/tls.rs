//! TLS termination on the listener (`server.tls_cert` / `tls_key`) and the
//! `Strict-Transport-Security` header (`server.hsts`).

use super::Live;
use crate::config::TlsFiles;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::http::ResponseHeader;
use pingora::listeners::tls::TlsSettings;
use pingora::modules::http::{HttpModule, HttpModuleBuilder, Module};
use std::sync::Arc;

/// rustls settings for the listener: the configured certificate chain and key, HTTP/2 offered
/// by ALPN (clients without it get HTTP/1.1). Validation already loaded both files.
pub(super) fn listener_settings(files: &TlsFiles) -> Result<TlsSettings, String> {
    // Pingora panics on files it cannot load: check them once more (they may have changed
    // since the config was read) and say which.
    crate::config::load_tls_pair(files)?;
    let mut settings =
        TlsSettings::intermediate(&files.cert, &files.key).map_err(|e| e.to_string())?;
    settings.enable_h2();
    Ok(settings)
}

/// Adds `Strict-Transport-Security` to every response Gatehouse writes on a TLS listener:
/// its own replies and proxied responses alike (both pass the downstream modules). The value
/// is read from the config in force, so a reload can change it.
pub(super) struct HstsBuilder {
    pub(super) live: Arc<ArcSwap<Live>>,
}

impl HttpModuleBuilder for HstsBuilder {
    fn init(&self) -> Module {
        Box::new(Hsts(self.live.load_full()))
    }
}

struct Hsts(Arc<Live>);

#[async_trait]
impl HttpModule for Hsts {
    async fn response_header_filter(
        &mut self,
        resp: &mut ResponseHeader,
        _end_of_stream: bool,
    ) -> pingora::Result<()> {
        if let Some(value) = self.0.rt.settings.hsts.as_deref() {
            resp.insert_header(http::header::STRICT_TRANSPORT_SECURITY, value)?;
        }
        Ok(())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
