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

/// rustls settings for the listener on `listen`: the configured certificate chain and key,
/// HTTP/2 offered by ALPN (clients without it get HTTP/1.1). Validation already loaded both
/// files.
pub(super) fn listener_settings(listen: &str, files: &TlsFiles) -> Result<TlsSettings, String> {
    // Pingora panics on files it cannot load: check them once more (they may have changed
    // since the config was read) and say which.
    crate::config::load_tls_pair(files)?;
    match certificate_not_after(&files.cert) {
        Some(not_after) => crate::observe::metrics().certificate_expires(listen, not_after),
        None => {
            tracing::warn!(cert = %files.cert, "cannot read the certificate's expiry date; gatehouse_tls_certificate_expiry_timestamp_seconds is left out")
        }
    }
    let mut settings =
        TlsSettings::intermediate(&files.cert, &files.key).map_err(|e| e.to_string())?;
    settings.enable_h2();
    Ok(settings)
}

/// When the first (the served) certificate in the PEM file `path` expires, in Unix seconds.
fn certificate_not_after(path: &str) -> Option<i64> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let first = CertificateDer::pem_file_iter(path).ok()?.next()?.ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&first).ok()?;
    Some(cert.validity().not_after.timestamp())
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
