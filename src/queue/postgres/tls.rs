//! TLS to the server, as libpq's `sslmode` and `sslrootcert` ask for it.
//! The postgres crate knows neither the verifying modes nor a root
//! certificate, so both are taken out of the URL here and the rustls
//! session is set up to match: `disable` speaks plain; `prefer` (the
//! default) and `require` encrypt without checking who answers (`prefer`
//! falls back to plain when the server offers no TLS); `verify-ca` checks
//! the certificate chain against the root certificates; `verify-full`
//! checks the host name too. As in libpq, `require` with an `sslrootcert`
//! verifies like `verify-ca`.

use std::path::PathBuf;
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use postgres::config::SslMode;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The `sslmode` values understood, as libpq spells them.
pub const MODES: &str = "disable, prefer, require, verify-ca or verify-full";

/// What the URL asks of TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: Mode,
    /// A PEM file of root certificates, or `system` for the system's.
    pub root_cert: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// Splits `url` into the URL the postgres crate parses (without `sslmode`
/// and `sslrootcert`) and the TLS settings they gave; `Err` names a
/// `sslmode` this version does not know.
pub fn split_url(url: &str) -> Result<(String, TlsSettings), String> {
    let mut settings = TlsSettings {
        mode: Mode::Prefer,
        root_cert: None,
    };
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), settings));
    };
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode_str(value).decode_utf8_lossy();
        match key {
            "sslmode" => {
                settings.mode = match &*value {
                    "disable" => Mode::Disable,
                    "prefer" => Mode::Prefer,
                    "require" => Mode::Require,
                    "verify-ca" => Mode::VerifyCa,
                    "verify-full" => Mode::VerifyFull,
                    other => return Err(format!("sslmode={other} is not one of {MODES}")),
                }
            }
            "sslrootcert" => settings.root_cert = Some(value.into_owned()),
            _ => kept.push(pair),
        }
    }
    let url = match kept.is_empty() {
        true => base.to_owned(),
        false => format!("{base}?{}", kept.join("&")),
    };
    Ok((url, settings))
}

impl TlsSettings {
    /// What the postgres crate is told: whether to ask for TLS, and
    /// whether to settle for plain.
    pub fn ssl_mode(&self) -> SslMode {
        match self.mode {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            _ => SslMode::Require,
        }
    }

    /// The connector for these settings; `None` for plain connections.
    pub fn connector(&self) -> Result<Option<MakeRustlsConnect>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let verify_ca =
            self.mode == Mode::VerifyCa || (self.mode == Mode::Require && self.root_cert.is_some());
        let config = match self.mode {
            Mode::Disable => return Ok(None),
            Mode::VerifyFull => builder
                .with_root_certificates(self.roots()?)
                .with_no_client_auth(),
            _ => {
                let chain = match verify_ca {
                    true => Some(
                        WebPkiServerVerifier::builder_with_provider(
                            Arc::new(self.roots()?),
                            provider.clone(),
                        )
                        .build()
                        .map_err(|e| e.to_string())?,
                    ),
                    false => None,
                };
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(Verifier { chain, provider }))
                    .with_no_client_auth()
            }
        };
        Ok(Some(MakeRustlsConnect::new(config)))
    }

    /// The root certificates: the `sslrootcert` file, the system's for
    /// `system`, and without one `~/.postgresql/root.crt` (libpq's default)
    /// when it exists, else the system's.
    fn roots(&self) -> Result<RootCertStore, String> {
        let default = std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(".postgresql/root.crt"))
            .filter(|path| path.is_file());
        let file = match self.root_cert.as_deref() {
            Some("system") => None,
            Some(path) => Some(PathBuf::from(path)),
            None => default,
        };
        let mut roots = RootCertStore::empty();
        let Some(file) = file else {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            return Ok(roots);
        };
        let shown = file.display();
        let certs = CertificateDer::pem_file_iter(&file)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("cannot read the root certificates sslrootcert={shown}: {e}"))?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(format!("sslrootcert={shown} holds no certificate"));
        }
        Ok(roots)
    }
}

/// Checks the handshake's signatures always, and the chain (not the name)
/// only when there is one to check against.
#[derive(Debug)]
struct Verifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            verified => verified,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_parameters_are_taken_out_of_the_url() {
        let (url, tls) = split_url(
            "postgres://app:pw@db/app?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(url, "postgres://app:pw@db/app?application_name=x");
        assert_eq!(tls.mode, Mode::VerifyFull);
        assert_eq!(tls.root_cert.as_deref(), Some("/etc/ca.pem"));
        let (url, tls) = split_url("postgres://db/app?sslmode=disable").unwrap();
        assert_eq!(
            (url.as_str(), tls.mode),
            ("postgres://db/app", Mode::Disable)
        );
        assert_eq!(split_url("postgres://db/app").unwrap().1.mode, Mode::Prefer);
        let refused = split_url("postgres://db/app?sslmode=allow").unwrap_err();
        assert!(refused.contains("sslmode=allow"), "{refused}");
    }
}
