//! TLS to Postgres: `sslmode` and `sslrootcert` as libpq reads them,
//! against a server of the test's own that accepts TLS connections only,
//! with certificates made for the test.

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

use crate::support::{Events, OwnPostgres, Sink, WEBHOOK_SECRET};

/// A certificate authority, written as `ca.pem` into `dir`.
fn authority(dir: &Path, name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join(name), ca.pem()).unwrap();
    ca
}

/// A server that speaks TLS only (`hostssl`), its certificate for
/// `localhost` signed by the authority in `dir/ca.pem`.
fn tls_server(dir: &Path) -> OwnPostgres {
    let ca = authority(dir, "ca.pem");
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    OwnPostgres::start(
        |data| {
            std::fs::write(data.join("server.crt"), cert.pem()).unwrap();
            let key_file = data.join("server.key");
            std::fs::write(&key_file, key.serialize_pem()).unwrap();
            std::fs::set_permissions(
                &key_file,
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )
            .unwrap();
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\n\
                 hostssl all all ::1/128 trust\n",
            )
            .unwrap();
        },
        &[
            "ssl=on",
            "ssl_cert_file=server.crt",
            "ssl_key_file=server.key",
        ],
    )
}

/// `events` on `host` of the server, with a password that must never show
/// and the URL's query `tls`.
fn events(server: &OwnPostgres, host: &str, tls: &str) -> Events {
    let url = format!(
        "postgres://postgres:Hunter2secret@{host}:{}/postgres?{tls}",
        server.port()
    );
    Events::new()
        .env("EVENTS_POSTGRES_URL", url)
        .env("EVENTS_PG_SCHEMA", "tls")
}

/// Emits one event and delivers it to a webhook with `work --burst`.
fn emits_and_delivers(server: &OwnPostgres, host: &str, tls: &str) {
    let sink = Sink::start();
    events(server, host, tls)
        .args(["emit", "user.signup", "--email", "a@b.c"])
        .run()
        .success();
    events(server, host, tls)
        .env("EVENTS_WEBHOOK_URL", sink.url())
        .env("EVENTS_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .args(["work", "--burst"])
        .run()
        .success();
    assert_eq!(sink.accepted_count(), 1, "{tls}");
}

#[test]
fn sslmode_require_and_verify_connect_and_deliver() {
    let dir = tempfile::tempdir().unwrap();
    let server = tls_server(dir.path());
    let ca = dir.path().join("ca.pem");
    emits_and_delivers(&server, "127.0.0.1", "sslmode=require");
    let root = format!("sslrootcert={}", ca.display());
    emits_and_delivers(&server, "localhost", &format!("sslmode=verify-full&{root}"));
    // verify-ca checks the chain, not the name.
    emits_and_delivers(&server, "127.0.0.1", &format!("sslmode=verify-ca&{root}"));
}

#[test]
fn a_certificate_from_another_authority_or_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = tls_server(dir.path());
    authority(dir.path(), "other.pem");
    let other = format!("sslrootcert={}", dir.path().join("other.pem").display());
    let ca = format!("sslrootcert={}", dir.path().join("ca.pem").display());
    for (host, tls, why) in [
        (
            "localhost",
            format!("sslmode=verify-full&{other}"),
            "UnknownIssuer",
        ),
        (
            "127.0.0.1",
            format!("sslmode=verify-ca&{other}"),
            "UnknownIssuer",
        ),
        (
            "127.0.0.1",
            format!("sslmode=verify-full&{ca}"),
            "not valid for name",
        ),
    ] {
        let out = events(&server, host, &tls).args(["status"]).run().code(1);
        assert!(
            out.stderr.starts_with("events: error: ") && out.stderr.contains("TLS"),
            "{tls}: {}",
            out.stderr
        );
        assert!(out.stderr.contains(why), "{tls}: {}", out.stderr);
        assert!(!out.stderr.contains("Hunter2"), "{}", out.stderr);
    }
}

#[test]
fn sslmode_disable_to_a_server_requiring_tls_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let server = tls_server(dir.path());
    let out = events(&server, "127.0.0.1", "sslmode=disable")
        .args(["status"])
        .run()
        .failure();
    assert!(out.stderr.contains("without TLS"), "{}", out.stderr);
    assert!(out.stderr.contains("sslmode=require"), "{}", out.stderr);
    assert!(!out.stderr.contains("Hunter2"), "{}", out.stderr);
}
