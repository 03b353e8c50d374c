//! TLS material of actions: client certificates (mTLS) and private CAs, checked when a trigger
//! is saved so that a broken PEM is a clear 422 instead of a failed delivery.

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use hookflow_engine::transport::CertificateInfo;

/// Parses a certificate chain and its key; checks they match and the leaf is currently valid.
pub fn inspect_identity(cert_pem: &str, key_pem: &str) -> Result<CertificateInfo, String> {
    let certs = parse_certs(cert_pem).map_err(|e| format!("certPem: {e}"))?;
    let (_, leaf) = x509_parser::parse_x509_certificate(&certs[0])
        .map_err(|e| format!("certPem: the certificate cannot be parsed: {e}"))?;
    let validity = leaf.validity();
    let now = time::OffsetDateTime::now_utc();
    let not_after = validity.not_after.to_datetime();
    let not_after_text = not_after
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| not_after.to_string());
    if not_after < now {
        return Err(format!(
            "certPem: the certificate expired on {not_after_text}"
        ));
    }
    if validity.not_before.to_datetime() > now {
        return Err(format!(
            "certPem: the certificate is not valid before {}",
            validity.not_before
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| {
        format!("keyPem: no private key could be read ({e}); expected a PKCS#8, RSA or EC key in PEM form")
    })?;

    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("keyPem: unsupported private key: {e}"))?;
    CertifiedKey::new(certs.clone(), signer)
        .keys_match()
        .map_err(|_| "keyPem: the private key does not match the certificate".to_string())?;
    Ok(CertificateInfo {
        subject: leaf.subject().to_string(),
        issuer: leaf.issuer().to_string(),
        not_after: not_after_text,
    })
}

/// Parses CA certificates.
pub fn check_ca(ca_pem: &str) -> Result<(), String> {
    let certs = parse_certs(ca_pem)?;
    for cert in &certs {
        x509_parser::parse_x509_certificate(cert)
            .map_err(|e| format!("a certificate cannot be parsed: {e}"))?;
    }
    Ok(())
}

fn parse_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("malformed PEM: {e}"))?;
    if certs.is_empty() {
        return Err(
            "no certificate found; paste PEM blocks starting with -----BEGIN CERTIFICATE-----"
                .into(),
        );
    }
    Ok(certs)
}
