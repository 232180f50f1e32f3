//! SCRAM-SHA-256 (RFC 5802, RFC 7677) against stored verifiers.
//!
//! Users are configured with PostgreSQL's verifier format,
//! `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64), the
//! same string `SELECT rolpassword FROM pg_authid` shows. The server never
//! holds a password or anything a client could log in with: a proof is checked
//! against StoredKey = H(ClientKey).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Iterations for newly made verifiers (PostgreSQL's default).
pub const DEFAULT_ITERATIONS: u32 = 4096;

type HmacSha256 = Hmac<Sha256>;

/// A stored SCRAM-SHA-256 verifier.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return [0; 32],
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn to_32(bytes: &[u8]) -> Option<[u8; 32]> {
    bytes.try_into().ok()
}

impl Verifier {
    /// Make a verifier for `password` with a fresh random salt.
    pub fn generate(password: &str, iterations: u32) -> Result<Verifier, String> {
        let salt: [u8; 16] = rand::random();
        Self::with_salt(password, &salt, iterations)
    }

    /// Make a verifier with a given salt (deterministic, for tests).
    pub fn with_salt(password: &str, salt: &[u8], iterations: u32) -> Result<Verifier, String> {
        let prepared = stringprep::saslprep(password)
            .map_err(|e| format!("password cannot be prepared: {e}"))?;
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(prepared.as_bytes(), salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let server_key = hmac(&salted, b"Server Key");
        Ok(Verifier {
            iterations,
            salt: salt.to_vec(),
            stored_key,
            server_key,
        })
    }

    /// Parse `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>`.
    pub fn parse(text: &str) -> Result<Verifier, String> {
        let bad = || {
            "not a SCRAM-SHA-256 verifier (expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>)".to_string()
        };
        let rest = text.strip_prefix("SCRAM-SHA-256$").ok_or_else(bad)?;
        let (params, keys) = rest.split_once('$').ok_or_else(bad)?;
        let (iterations, salt) = params.split_once(':').ok_or_else(bad)?;
        let (stored, server) = keys.split_once(':').ok_or_else(bad)?;
        let iterations: u32 = iterations.parse().map_err(|_| bad())?;
        if iterations == 0 {
            return Err(bad());
        }
        Ok(Verifier {
            iterations,
            salt: STANDARD.decode(salt).map_err(|_| bad())?,
            stored_key: to_32(&STANDARD.decode(stored).map_err(|_| bad())?).ok_or_else(bad)?,
            server_key: to_32(&STANDARD.decode(server).map_err(|_| bad())?).ok_or_else(bad)?,
        })
    }

    /// The stored form.
    pub fn encode(&self) -> String {
        format!(
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(self.stored_key),
            STANDARD.encode(self.server_key)
        )
    }

    /// A verifier nobody can log in with, for unknown users: the exchange runs
    /// the same way and fails only at the proof, so user names cannot be probed.
    pub fn mock(user: &str) -> Verifier {
        let salt: [u8; 16] = {
            let digest = Sha256::digest(format!("bianzhi-mock-{user}"));
            let mut salt = [0u8; 16];
            salt.copy_from_slice(&digest[..16]);
            salt
        };
        Verifier {
            iterations: DEFAULT_ITERATIONS,
            salt: salt.to_vec(),
            stored_key: rand::random(),
            server_key: rand::random(),
        }
    }
}

/// Server side of one exchange, between server-first and client-final.
#[derive(Debug)]
pub struct Exchange {
    verifier: Verifier,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    gs2_header: String,
}

/// Parse client-first (`n,,n=user,r=nonce`) and answer with server-first.
pub fn server_first(client_first: &str, verifier: Verifier) -> Result<(String, Exchange), String> {
    // gs2-header: channel binding flag, optional authzid.
    let mut parts = client_first.splitn(3, ',');
    let flag = parts.next().unwrap_or_default();
    let authzid = parts.next().unwrap_or_default();
    let bare = parts.next().ok_or("malformed SCRAM client-first message")?;
    match flag {
        "n" | "y" => {}
        _ if flag.starts_with("p=") => {
            return Err("channel binding is not supported; use SCRAM-SHA-256".into())
        }
        _ => return Err("malformed SCRAM client-first message".into()),
    }
    let client_nonce = bare
        .split(',')
        .find_map(|attribute| attribute.strip_prefix("r="))
        .filter(|n| !n.is_empty())
        .ok_or("SCRAM client-first message has no nonce")?;
    let server_nonce: [u8; 18] = rand::random();
    let nonce = format!("{client_nonce}{}", STANDARD.encode(server_nonce));
    let server_first = format!(
        "r={nonce},s={},i={}",
        STANDARD.encode(&verifier.salt),
        verifier.iterations
    );
    Ok((
        server_first.clone(),
        Exchange {
            verifier,
            client_first_bare: bare.to_string(),
            server_first,
            nonce,
            gs2_header: format!("{flag},{authzid},"),
        },
    ))
}

impl Exchange {
    /// Check client-final (`c=…,r=…,p=proof`); on success, the server-final message.
    pub fn server_final(&self, client_final: &str) -> Result<String, String> {
        let (without_proof, proof) = client_final
            .rsplit_once(",p=")
            .ok_or("SCRAM client-final message has no proof")?;
        let mut channel_binding = None;
        let mut nonce = None;
        for attribute in without_proof.split(',') {
            if let Some(value) = attribute.strip_prefix("c=") {
                channel_binding = Some(value);
            } else if let Some(value) = attribute.strip_prefix("r=") {
                nonce = Some(value);
            }
        }
        if channel_binding != Some(STANDARD.encode(&self.gs2_header).as_str()) {
            return Err("SCRAM channel binding does not match".into());
        }
        if nonce != Some(self.nonce.as_str()) {
            return Err("SCRAM nonce does not match".into());
        }
        let proof = STANDARD
            .decode(proof)
            .map_err(|_| "SCRAM proof is not base64")?;
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let client_signature = hmac(&self.verifier.stored_key, auth_message.as_bytes());
        if proof.len() != 32 {
            return Err("password authentication failed".into());
        }
        let mut client_key = [0u8; 32];
        for (i, byte) in client_key.iter_mut().enumerate() {
            *byte = proof[i] ^ client_signature[i];
        }
        let computed: [u8; 32] = Sha256::digest(client_key).into();
        // Constant-time comparison of the derived StoredKey.
        let difference = computed
            .iter()
            .zip(self.verifier.stored_key.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if difference != 0 {
            return Err("password authentication failed".into());
        }
        let server_signature = hmac(&self.verifier.server_key, auth_message.as_bytes());
        Ok(format!("v={}", STANDARD.encode(server_signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client side, as RFC 5802 describes it, to drive the server in tests.
    fn client_final(password: &str, client_first_bare: &str, server_first: &str) -> String {
        let mut salt = None;
        let mut iterations = 0;
        let mut nonce = "";
        for attribute in server_first.split(',') {
            if let Some(v) = attribute.strip_prefix("s=") {
                salt = Some(STANDARD.decode(v).unwrap());
            } else if let Some(v) = attribute.strip_prefix("i=") {
                iterations = v.parse().unwrap();
            } else if let Some(v) = attribute.strip_prefix("r=") {
                nonce = v;
            }
        }
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt.unwrap(), iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = Sha256::digest(client_key);
        let without_proof = format!("c={},r={nonce}", STANDARD.encode("n,,"));
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature)
            .map(|(a, b)| a ^ b)
            .collect();
        format!("{without_proof},p={}", STANDARD.encode(proof))
    }

    #[test]
    fn a_full_exchange_succeeds_with_the_password_and_fails_without() {
        let verifier = Verifier::with_salt("s3cret", b"0123456789abcdef", 4096).unwrap();
        let stored = verifier.encode();
        assert!(stored.starts_with("SCRAM-SHA-256$4096:"));
        assert_eq!(Verifier::parse(&stored).unwrap(), verifier);

        let bare = "n=analyst,r=clientnonce123";
        let (first, exchange) = server_first(&format!("n,,{bare}"), verifier.clone()).unwrap();
        assert!(first.starts_with("r=clientnonce123"));
        let good = client_final("s3cret", bare, &first);
        let server_final = exchange.server_final(&good).unwrap();
        assert!(server_final.starts_with("v="));

        let (first, exchange) = server_first(&format!("n,,{bare}"), verifier).unwrap();
        let bad = client_final("wrong", bare, &first);
        assert!(exchange.server_final(&bad).is_err());
    }

    #[test]
    fn known_postgres_verifier_is_accepted() {
        // RFC 7677's example: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations.
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let verifier = Verifier::with_salt("pencil", &salt, 4096).unwrap();
        let (_, exchange) = server_first("n,,n=user,r=rOprNGfwEbeRWgbNEkqO", verifier).unwrap();
        // Replace the random server nonce with the RFC's to replay its messages.
        let exchange = Exchange {
            server_first: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".into(),
            nonce: "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into(),
            ..exchange
        };
        let client_final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert_eq!(
            exchange.server_final(client_final).unwrap(),
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn malformed_input_is_refused() {
        assert!(Verifier::parse("md5abc").is_err());
        assert!(Verifier::parse("SCRAM-SHA-256$x:y$z:w").is_err());
        let verifier = Verifier::mock("nobody");
        assert!(server_first("garbage", verifier.clone()).is_err());
        assert!(server_first("p=tls-server-end-point,,n=u,r=x", verifier).is_err());
    }
}
