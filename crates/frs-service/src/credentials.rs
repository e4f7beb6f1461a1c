//! Access keys (AK/SK pairs) and the tokens issued for them.
//!
//! Contracts:
//! - A secret key is shown once, when its credential is created; at rest it is sealed with
//!   ChaCha20-Poly1305 under a key derived from the [`MasterKey`] (random nonce per secret, the
//!   access key as associated data, so a sealed secret cannot be moved to another row).
//! - Every check reads the store: a credential disabled or deleted by another process (the
//!   operator's CLI) authenticates nothing from the next request on.
//! - A token is `frs1.<payload>.<mac>`: base64url (no padding) of the JSON `{"ak","project","exp"}`
//!   and of its HMAC-SHA256 under another key derived from the master key. It is valid until `exp`
//!   (unix seconds) and only while its credential exists and is enabled.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use frs_store::{AccessStore, CredentialRow};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::{Action, Caller, Policy, ServiceError};

type HmacSha256 = Hmac<Sha256>;

/// Length of an access key: uppercase letters and digits.
pub const ACCESS_KEY_LEN: usize = 20;
/// Length of a secret key: letters and digits.
pub const SECRET_KEY_LEN: usize = 40;
/// Longest credential description.
pub const MAX_DESCRIPTION_LEN: usize = 255;

const TOKEN_PREFIX: &str = "frs1.";
const NONCE_LEN: usize = 12;
const SEAL_AAD_PREFIX: &[u8] = b"frs credential v1:";

/// The 32-byte key that seals secret keys and MACs tokens. Its `Debug` never shows it.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    /// A new random key from the operating system's generator.
    pub fn generate() -> Result<MasterKey, ServiceError> {
        let mut key = [0u8; 32];
        fill_random(&mut key)?;
        Ok(MasterKey(key))
    }

    /// Parses standard base64 of exactly 32 bytes (surrounding whitespace ignored). The error
    /// never contains the input.
    pub fn from_base64(text: &str) -> Result<MasterKey, String> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| "the master key is not valid base64".to_owned())?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("the master key must be 32 bytes, it is {} bytes", b.len()))?;
        Ok(MasterKey(key))
    }

    /// Standard base64 of the key (the format [`MasterKey::from_base64`] reads).
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// A 32-byte key for one purpose, independent of the keys of other purposes.
    fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(purpose);
        mac.finalize().into_bytes().into()
    }
}

/// Token and signature settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialsConfig {
    /// How long an issued token is valid.
    pub token_ttl_secs: u64,
    /// Largest accepted difference between a signed request's `X-Sdk-Date` and the clock.
    pub max_clock_skew_secs: u64,
}

impl Default for CredentialsConfig {
    fn default() -> Self {
        CredentialsConfig { token_ttl_secs: 3600, max_clock_skew_secs: 900 }
    }
}

/// The time source of token expiry and signature dates (replaceable in tests).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// A credential as created: the only value that carries the secret key. `Debug` redacts it.
#[derive(Clone, Serialize)]
pub struct NewCredential {
    pub access_key: String,
    pub secret_key: String,
    pub project_id: String,
    pub policy: Policy,
}

impl std::fmt::Debug for NewCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewCredential")
            .field("access_key", &self.access_key)
            .field("project_id", &self.project_id)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// A credential as listed: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialInfo {
    pub access_key: String,
    pub project_id: String,
    pub policy: Policy,
    pub enabled: bool,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub description: Option<String>,
}

/// What a signature is checked with: the secret of an enabled credential and the caller it
/// authenticates. `Debug` redacts the secret.
#[derive(Clone)]
pub struct SigningKey {
    secret: String,
    /// Who a request signed with this key acts as.
    pub caller: Caller,
}

impl SigningKey {
    /// The secret key (the HMAC key of the signature).
    pub fn secret(&self) -> &[u8] {
        self.secret.as_bytes()
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("caller", &self.caller).finish_non_exhaustive()
    }
}

/// A token and what it is valid for.
#[derive(Clone)]
pub struct IssuedToken {
    /// The token (`X-Subject-Token`, then `X-Auth-Token`).
    pub token: String,
    /// When it stops being accepted.
    pub expires_at: SystemTime,
    /// The project it acts on.
    pub project_id: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("expires_at", &self.expires_at)
            .field("project_id", &self.project_id)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct TokenPayload {
    ak: String,
    project: String,
    exp: i64,
}

/// The credentials use-case. Cheap to clone.
#[derive(Clone)]
pub struct Credentials {
    inner: Arc<Inner>,
}

struct Inner {
    store: AccessStore,
    cipher: ChaCha20Poly1305,
    token_key: [u8; 32],
    config: CredentialsConfig,
    clock: Clock,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl Credentials {
    /// Credentials kept in `store`, sealed and MAC'd with keys derived from `master_key`, on the
    /// system clock.
    pub fn new(store: AccessStore, master_key: &MasterKey, config: CredentialsConfig) -> Credentials {
        let seal_key = master_key.derive(b"frs secret sealing v1");
        Credentials {
            inner: Arc::new(Inner {
                store,
                cipher: ChaCha20Poly1305::new(Key::from_slice(&seal_key)),
                token_key: master_key.derive(b"frs token mac v1"),
                config,
                clock: Arc::new(SystemTime::now),
            }),
        }
    }

    /// The same credentials on another clock.
    pub fn with_clock(self, clock: Clock) -> Credentials {
        let inner = &self.inner;
        Credentials {
            inner: Arc::new(Inner {
                store: inner.store.clone(),
                cipher: inner.cipher.clone(),
                token_key: inner.token_key,
                config: inner.config,
                clock,
            }),
        }
    }

    /// The current time of this use-case's clock.
    pub fn now(&self) -> SystemTime {
        (self.inner.clock)()
    }

    /// The largest accepted skew of a signed request's date.
    pub fn max_clock_skew(&self) -> Duration {
        Duration::from_secs(self.inner.config.max_clock_skew_secs)
    }

    /// Creates an enabled credential for `project_id`. The answer is the only place the secret
    /// key ever appears.
    pub async fn create(
        &self,
        project_id: &str,
        policy: Policy,
        description: Option<String>,
    ) -> Result<NewCredential, ServiceError> {
        validate_project_id(project_id)?;
        if description.as_ref().is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_LEN) {
            return Err(ServiceError::InvalidParameter(format!(
                "the description is longer than {MAX_DESCRIPTION_LEN} characters"
            )));
        }
        let access_key = random_string(ACCESS_KEY_LEN, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")?;
        let secret_key =
            random_string(SECRET_KEY_LEN, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")?;
        let row = CredentialRow {
            access_key: access_key.clone(),
            project_id: project_id.to_owned(),
            policy: policy.name().to_owned(),
            sealed_secret: self.seal(&access_key, &secret_key)?,
            enabled: true,
            created_at: unix_seconds(self.now()),
            description,
        };
        let store = self.inner.store.clone();
        blocking(move || store.insert_credential(&row)).await?;
        Ok(NewCredential { access_key, secret_key, project_id: project_id.to_owned(), policy })
    }

    /// Every credential, oldest first, without secrets.
    pub async fn list(&self) -> Result<Vec<CredentialInfo>, ServiceError> {
        let store = self.inner.store.clone();
        let rows = blocking(move || store.credentials()).await?;
        rows.into_iter()
            .map(|row| {
                Ok(CredentialInfo {
                    policy: policy_of(&row)?,
                    access_key: row.access_key,
                    project_id: row.project_id,
                    enabled: row.enabled,
                    created_at: format_rfc3339(row.created_at),
                    description: row.description,
                })
            })
            .collect()
    }

    /// Enables or disables a credential; `false` if there is none with this access key.
    pub async fn set_enabled(&self, access_key: &str, enabled: bool) -> Result<bool, ServiceError> {
        let (store, access_key) = (self.inner.store.clone(), access_key.to_owned());
        blocking(move || store.set_credential_enabled(&access_key, enabled)).await
    }

    /// Deletes a credential (its tokens die with it); `false` if there is none with this access key.
    pub async fn delete(&self, access_key: &str) -> Result<bool, ServiceError> {
        let (store, access_key) = (self.inner.store.clone(), access_key.to_owned());
        blocking(move || store.delete_credential(&access_key)).await
    }

    /// The secret and caller of an enabled credential; [`ServiceError::Unauthenticated`] for an
    /// unknown or disabled access key.
    pub async fn signing_key(&self, access_key: &str) -> Result<SigningKey, ServiceError> {
        let row = self.enabled_credential(access_key).await?.map_err(ServiceError::Unauthenticated)?;
        let secret = self.unseal(&row)?;
        Ok(SigningKey { secret, caller: caller_of(&row)? })
    }

    /// Issues a token acting as `caller` (who must hold a credential) until the configured TTL.
    pub async fn issue_token(&self, caller: &Caller) -> Result<IssuedToken, ServiceError> {
        caller.authorize(&caller.project_id, Action::CreateToken)?;
        let Some(access_key) = caller.access_key.clone() else {
            return Err(ServiceError::Unauthenticated("a token needs a credential".into()));
        };
        let expires_at = self.now() + Duration::from_secs(self.inner.config.token_ttl_secs);
        let payload =
            TokenPayload { ak: access_key, project: caller.project_id.clone(), exp: unix_seconds(expires_at) };
        let payload =
            serde_json::to_vec(&payload).map_err(|e| ServiceError::Internal(format!("token payload: {e}")))?;
        let signed = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(payload));
        let mac = URL_SAFE_NO_PAD.encode(self.token_mac(&signed).finalize().into_bytes());
        Ok(IssuedToken { token: format!("{signed}.{mac}"), expires_at, project_id: caller.project_id.clone() })
    }

    /// The caller a token acts as; [`ServiceError::InvalidToken`] if it is malformed, its MAC is
    /// wrong, it has expired, or its credential is gone or disabled.
    pub async fn verify_token(&self, token: &str) -> Result<Caller, ServiceError> {
        let invalid = |detail: &str| ServiceError::InvalidToken(detail.to_owned());
        let (signed, mac) = token.rsplit_once('.').ok_or_else(|| invalid("not a token"))?;
        let payload = signed.strip_prefix(TOKEN_PREFIX).ok_or_else(|| invalid("not an frs1 token"))?;
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| invalid("the MAC is not base64url"))?;
        self.token_mac(signed).verify_slice(&mac).map_err(|_| invalid("wrong MAC"))?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid("the payload is not base64url"))?;
        let payload: TokenPayload = serde_json::from_slice(&payload).map_err(|_| invalid("malformed payload"))?;
        if unix_seconds(self.now()) >= payload.exp {
            return Err(invalid("expired"));
        }
        let row = self.enabled_credential(&payload.ak).await?.map_err(ServiceError::InvalidToken)?;
        if row.project_id != payload.project {
            return Err(invalid("the credential's project changed"));
        }
        caller_of(&row)
    }

    /// The credential if it exists and is enabled, else why not (for logs).
    async fn enabled_credential(&self, access_key: &str) -> Result<Result<CredentialRow, String>, ServiceError> {
        let (store, key) = (self.inner.store.clone(), access_key.to_owned());
        let row = blocking(move || store.credential(&key)).await?;
        Ok(match row {
            None => Err(format!("unknown access key {access_key}")),
            Some(row) if !row.enabled => Err(format!("access key {access_key} is disabled")),
            Some(row) => Ok(row),
        })
    }

    fn token_mac(&self, signed: &str) -> HmacSha256 {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.inner.token_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(signed.as_bytes());
        mac
    }

    fn seal(&self, access_key: &str, secret: &str) -> Result<Vec<u8>, ServiceError> {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        let aad = [SEAL_AAD_PREFIX, access_key.as_bytes()].concat();
        let sealed = self
            .inner
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: secret.as_bytes(), aad: &aad })
            .map_err(|_| ServiceError::Internal("sealing a secret key failed".into()))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    fn unseal(&self, row: &CredentialRow) -> Result<String, ServiceError> {
        let fail = || {
            ServiceError::Internal(format!(
                "the secret key of {} cannot be unsealed: the master key is not the one it was created with",
                row.access_key
            ))
        };
        if row.sealed_secret.len() < NONCE_LEN {
            return Err(fail());
        }
        let (nonce, sealed) = row.sealed_secret.split_at(NONCE_LEN);
        let aad = [SEAL_AAD_PREFIX, row.access_key.as_bytes()].concat();
        let secret = self
            .inner
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: &aad })
            .map_err(|_| fail())?;
        String::from_utf8(secret).map_err(|_| fail())
    }
}

/// The access key a token names, not verified: for the audit record of a failed authentication.
pub fn token_access_key(token: &str) -> Option<String> {
    let payload = token.strip_prefix(TOKEN_PREFIX)?.split('.').next()?;
    let payload: TokenPayload = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    Some(payload.ak)
}

/// Project ids are 1–64 letters, digits, `-` or `_` (Huawei's are 32 hex digits).
fn validate_project_id(project_id: &str) -> Result<(), ServiceError> {
    let valid = (1..=64).contains(&project_id.len())
        && project_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(ServiceError::InvalidParameter("a project id is 1 to 64 letters, digits, '-' or '_'".into()))
    }
}

fn policy_of(row: &CredentialRow) -> Result<Policy, ServiceError> {
    row.policy.parse().map_err(|e| ServiceError::Internal(format!("credential {}: stored policy: {e}", row.access_key)))
}

fn caller_of(row: &CredentialRow) -> Result<Caller, ServiceError> {
    Ok(Caller { access_key: Some(row.access_key.clone()), project_id: row.project_id.clone(), policy: policy_of(row)? })
}

fn fill_random(buf: &mut [u8]) -> Result<(), ServiceError> {
    getrandom::fill(buf).map_err(|e| ServiceError::Internal(format!("the system random generator failed: {e}")))
}

/// `len` characters drawn uniformly from `alphabet` (rejection sampling over random bytes).
fn random_string(len: usize, alphabet: &[u8]) -> Result<String, ServiceError> {
    // The largest multiple of the alphabet's size that fits in a byte: bytes at or above it are
    // rejected so that every character is equally likely.
    let bound = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        fill_random(&mut buf)?;
        for &b in buf.iter().filter(|&&b| usize::from(b) < bound) {
            if out.len() == len {
                break;
            }
            out.push(char::from(alphabet[usize::from(b) % alphabet.len()]));
        }
    }
    Ok(out)
}

/// Unix seconds of a time (negative before 1970).
pub(crate) fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// RFC 3339 in UTC (`2026-05-01T12:00:00Z`) of unix seconds.
pub fn format_rfc3339(unix_seconds: i64) -> String {
    jiff::Timestamp::from_second(unix_seconds).map_or_else(|_| unix_seconds.to_string(), |t| t.to_string())
}

/// Runs blocking store work off the async runtime.
pub(crate) async fn blocking<T: Send + 'static, E: Into<ServiceError> + Send + 'static>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ServiceError::Internal(format!("blocking task failed: {e}")))?
        .map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    fn credentials() -> (tempfile::TempDir, Credentials, Arc<AtomicU64>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = AccessStore::open(dir.path()).expect("store");
        let now = Arc::new(AtomicU64::new(1_800_000_000));
        let clock = Arc::clone(&now);
        let credentials = Credentials::new(store, &MasterKey([7; 32]), CredentialsConfig::default())
            .with_clock(Arc::new(move || UNIX_EPOCH + Duration::from_secs(clock.load(Ordering::Relaxed))));
        (dir, credentials, now)
    }

    #[test]
    fn keys_have_their_formats_and_the_master_key_is_never_shown() {
        let ak = random_string(ACCESS_KEY_LEN, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789").expect("random");
        assert!(ak.len() == 20 && ak.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()), "{ak}");
        let key = MasterKey::generate().expect("random");
        assert_eq!(MasterKey::from_base64(&key.to_base64()).expect("round trip").0, key.0);
        assert_eq!(format!("{key:?}"), "MasterKey([redacted])");
        assert!(MasterKey::from_base64("c2hvcnQ=").expect_err("16 bytes").contains("32 bytes"));
        assert!(!MasterKey::from_base64("not base64 secret!").expect_err("not base64").contains("secret"));
    }

    #[tokio::test]
    async fn secrets_are_sealed_at_rest_and_unsealed_for_enabled_keys_only() {
        let (dir, credentials, _) = credentials();
        let new = credentials.create("p1", Policy::ReadOnly, Some("gate".into())).await.expect("create");
        assert!(new.secret_key.len() == SECRET_KEY_LEN && new.secret_key.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(!format!("{new:?}").contains(&new.secret_key));
        let row = AccessStore::open(dir.path()).expect("store").credential(&new.access_key).expect("get").expect("row");
        assert!(!row.sealed_secret.windows(8).any(|w| new.secret_key.as_bytes().windows(8).any(|s| s == w)));
        let key = credentials.signing_key(&new.access_key).await.expect("enabled");
        assert_eq!(key.secret(), new.secret_key.as_bytes());
        assert_eq!(
            key.caller,
            Caller { access_key: Some(new.access_key.clone()), project_id: "p1".into(), policy: Policy::ReadOnly }
        );
        assert!(!format!("{key:?}").contains(&new.secret_key));

        assert!(credentials.set_enabled(&new.access_key, false).await.expect("disable"));
        assert!(matches!(credentials.signing_key(&new.access_key).await, Err(ServiceError::Unauthenticated(_))));
        assert!(matches!(credentials.signing_key("NOSUCHKEY").await, Err(ServiceError::Unauthenticated(_))));
        let listed = credentials.list().await.expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].enabled, listed[0].created_at.as_str()), (false, "2027-01-15T08:00:00Z"));

        let other = Credentials::new(
            AccessStore::open(dir.path()).expect("store"),
            &MasterKey([8; 32]),
            CredentialsConfig::default(),
        );
        credentials.set_enabled(&new.access_key, true).await.expect("enable");
        assert!(matches!(other.signing_key(&new.access_key).await, Err(ServiceError::Internal(_))), "wrong master key");
        assert!(matches!(credentials.create("", Policy::Full, None).await, Err(ServiceError::InvalidParameter(_))));
        assert!(matches!(credentials.create("a/b", Policy::Full, None).await, Err(ServiceError::InvalidParameter(_))));
    }

    #[tokio::test]
    async fn tokens_expire_resist_tampering_and_die_with_their_key() {
        let (_dir, credentials, now) = credentials();
        let new = credentials.create("p1", Policy::Full, None).await.expect("create");
        let caller = credentials.signing_key(&new.access_key).await.expect("key").caller;
        let issued = credentials.issue_token(&caller).await.expect("token");
        assert!(issued.token.starts_with("frs1."));
        assert_eq!(issued.expires_at, UNIX_EPOCH + Duration::from_secs(1_800_003_600));
        assert_eq!(credentials.verify_token(&issued.token).await.expect("valid"), caller);
        assert_eq!(token_access_key(&issued.token), Some(new.access_key.clone()));

        let invalid = |r: Result<Caller, ServiceError>| matches!(r, Err(ServiceError::InvalidToken(_)));
        let (signed, mac) = issued.token.rsplit_once('.').expect("two parts");
        let forged = URL_SAFE_NO_PAD.encode(br#"{"ak":"X","project":"p1","exp":9999999999}"#);
        for token in [
            format!("{signed}.{}", URL_SAFE_NO_PAD.encode([0u8; 32])),
            format!("frs1.{forged}.{mac}"),
            format!("{signed}x.{mac}"),
            "frs1.".to_owned(),
            String::new(),
            "garbage".to_owned(),
        ] {
            assert!(invalid(credentials.verify_token(&token).await), "{token}");
        }
        now.fetch_add(3599, Ordering::Relaxed);
        assert!(credentials.verify_token(&issued.token).await.is_ok(), "one second left");
        now.fetch_add(1, Ordering::Relaxed);
        assert!(invalid(credentials.verify_token(&issued.token).await), "expired");

        now.fetch_sub(3600, Ordering::Relaxed);
        credentials.set_enabled(&new.access_key, false).await.expect("disable");
        assert!(invalid(credentials.verify_token(&issued.token).await), "disabled key");
        credentials.set_enabled(&new.access_key, true).await.expect("enable");
        assert!(credentials.delete(&new.access_key).await.expect("delete"));
        assert!(invalid(credentials.verify_token(&issued.token).await), "deleted key");
        assert!(matches!(
            credentials.issue_token(&Caller::unauthenticated("p1")).await,
            Err(ServiceError::Unauthenticated(_))
        ));
    }
}
