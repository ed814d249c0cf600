//! API keys and roles. Keys are kept only as SHA-256 digests; a presented
//! key is hashed and compared against every digest in constant time (no
//! early exit, no length leak). Roles are ordered: reader < scorer < admin.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::config::{ApiKeyConfig, ServeConfig};
use super::error::ApiError;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Risk lists, customers, interventions, KPI, models.
    Reader,
    /// Reader + scoring.
    Scorer,
    /// Scorer + reloads, scoring runs, outcomes.
    Admin,
}

impl Role {
    /// The role's name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Scorer => "scorer",
            Role::Admin => "admin",
        }
    }

    /// The role of a name, as [`Role::name`] gives it.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "reader" => Some(Role::Reader),
            "scorer" => Some(Role::Scorer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's name (never the key).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The account manager id the key belongs to (`[[serve.keys]] owner`).
    pub owner: Option<String>,
}

impl Caller {
    /// `Ok` when the caller's role is at least `need`.
    pub fn require(&self, need: Role) -> Result<(), ApiError> {
        if self.role >= need {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                have: self.role.name(),
                need: need.name(),
            })
        }
    }
}

/// Whether a caller may act on something `owner` owns (record an
/// intervention's outcome, override a customer): an admin on anything, an
/// account manager (a key or session with `owner`) on their own. The API and
/// the web app both ask this.
pub fn may_act_on(role: Role, caller_owner: Option<&str>, owner: Option<&str>) -> bool {
    role >= Role::Admin || caller_owner.is_some_and(|mine| Some(mine) == owner)
}

/// Whether a caller may act on anything at all: checked before looking up
/// what they name, so a caller without the right learns nothing of what
/// exists.
pub fn may_act_on_some(role: Role, caller_owner: Option<&str>) -> bool {
    role >= Role::Admin || caller_owner.is_some()
}

/// The SHA-256 of a key, as lowercase hex (what the config stores).
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

struct Entry {
    name: String,
    role: Role,
    owner: Option<String>,
    digest: [u8; 32],
}

/// The known keys.
pub struct KeyRing {
    entries: Vec<Entry>,
    open: bool,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("keys", &self.entries.len())
            .field("open", &self.open)
            .finish()
    }
}

/// Constant-time equality of two digests.
pub fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.ct_eq(b).into()
}

impl KeyRing {
    /// Keys from the config, plus `env` (`role:key,role:key`, as in
    /// `CHURNGUARD_API_KEYS`). Errors name the bad entry, never the key.
    pub fn new(config: &ServeConfig, env: Option<&str>) -> Result<KeyRing, String> {
        let mut entries = Vec::new();
        for (i, k) in config.keys.iter().enumerate() {
            entries.push(Self::entry_of(k).map_err(|m| format!("serve.keys[{i}]: {m}"))?);
        }
        if let Some(env) = env {
            for (i, pair) in env
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .enumerate()
            {
                let (role, key) = pair.split_once(':').ok_or_else(|| {
                    format!("CHURNGUARD_API_KEYS entry {}: expected role:key", i + 1)
                })?;
                let role = Role::parse(role.trim()).ok_or_else(|| {
                    format!(
                        "CHURNGUARD_API_KEYS entry {}: unknown role (expected reader, scorer or admin)",
                        i + 1
                    )
                })?;
                if key.trim().len() < 16 {
                    return Err(format!(
                        "CHURNGUARD_API_KEYS entry {}: keys must be at least 16 characters",
                        i + 1
                    ));
                }
                let mut digest = [0u8; 32];
                digest.copy_from_slice(&Sha256::digest(key.trim().as_bytes()));
                entries.push(Entry {
                    name: format!("env-{}-{}", role.name(), i + 1),
                    role,
                    owner: None,
                    digest,
                });
            }
        }
        Ok(KeyRing {
            entries,
            open: false,
        })
    }

    fn entry_of(k: &ApiKeyConfig) -> Result<Entry, String> {
        let role = Role::parse(&k.role).ok_or_else(|| format!("unknown role {:?}", k.role))?;
        let bytes = hex::decode(&k.sha256).map_err(|_| "sha256 is not hex".to_string())?;
        let digest: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "sha256 must be 32 bytes (64 hex digits)".to_string())?;
        Ok(Entry {
            name: k.name.clone(),
            role,
            owner: k.owner.clone(),
            digest,
        })
    }

    /// A ring that lets everyone in as admin (`serve --no-auth`, loopback only).
    pub fn open() -> KeyRing {
        KeyRing {
            entries: Vec::new(),
            open: true,
        }
    }

    /// Whether any key is configured (or the ring is open).
    pub fn usable(&self) -> bool {
        self.open || !self.entries.is_empty()
    }

    /// Whether a key named `name` with `role` is still configured: a web
    /// session outlives restarts (it is in the store), so each page checks
    /// that the key it was made with has not been revoked or changed role.
    pub fn grants(&self, name: &str, role: Role) -> bool {
        if self.open {
            return name == "anonymous" && role == Role::Admin;
        }
        self.entries
            .iter()
            .any(|e| e.name == name && e.role == role)
    }

    /// Who a presented key belongs to. Every digest is compared, in constant time.
    pub fn identify(&self, presented: Option<&str>) -> Result<Caller, ApiError> {
        if self.open {
            return Ok(Caller {
                name: "anonymous".into(),
                role: Role::Admin,
                owner: None,
            });
        }
        let key = presented.ok_or(ApiError::Unauthorized)?;
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&Sha256::digest(key.as_bytes()));
        let mut found: Option<&Entry> = None;
        for e in &self.entries {
            if digests_equal(&e.digest, &digest) && found.is_none() {
                found = Some(e);
            }
        }
        found
            .map(|e| Caller {
                name: e.name.clone(),
                role: e.role,
                owner: e.owner.clone(),
            })
            .ok_or(ApiError::Unauthorized)
    }
}

/// A token bucket per key name: `per_minute` requests a minute, bursting to
/// the same number.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter; `0` means unlimited.
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`, or says how long to wait.
    pub fn check(&self, key: &str) -> Result<(), ApiError> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let cap = f64::from(self.per_minute);
        let rate = cap / 60.0;
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, last) = buckets.entry(key.to_string()).or_insert((cap, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(cap);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(ApiError::RateLimited {
                per_minute: self.per_minute,
                retry_after: ((1.0 - *tokens) / rate).ceil().max(1.0) as u64,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> KeyRing {
        let config = ServeConfig {
            keys: vec![ApiKeyConfig {
                name: "cs-team".into(),
                role: "reader".into(),
                sha256: hash_key("reader-key-0123456789"),
                owner: None,
            }],
            ..Default::default()
        };
        KeyRing::new(
            &config,
            Some("admin:admin-key-0123456789, scorer:scorer-key-0123456789"),
        )
        .unwrap()
    }

    #[test]
    fn keys_map_to_roles() {
        let r = ring();
        assert_eq!(
            r.identify(Some("reader-key-0123456789")).unwrap().role,
            Role::Reader
        );
        assert_eq!(
            r.identify(Some("admin-key-0123456789")).unwrap().role,
            Role::Admin
        );
        assert_eq!(
            r.identify(Some("scorer-key-0123456789")).unwrap().name,
            "env-scorer-2"
        );
        assert!(matches!(
            r.identify(Some("nope")),
            Err(ApiError::Unauthorized)
        ));
        assert!(matches!(r.identify(None), Err(ApiError::Unauthorized)));
    }

    #[test]
    fn roles_are_ordered() {
        let scorer = Caller {
            name: "s".into(),
            role: Role::Scorer,
            owner: None,
        };
        assert!(scorer.require(Role::Reader).is_ok());
        assert!(scorer.require(Role::Scorer).is_ok());
        assert!(matches!(
            scorer.require(Role::Admin),
            Err(ApiError::Forbidden { need: "admin", .. })
        ));
    }

    #[test]
    fn the_compare_is_constant_time_equality() {
        let a = [7u8; 32];
        let mut b = a;
        assert!(digests_equal(&a, &b));
        b[31] ^= 1;
        assert!(!digests_equal(&a, &b));
        b = a;
        b[0] ^= 0x80;
        assert!(!digests_equal(&a, &b));
    }

    #[test]
    fn bad_env_entries_are_named_without_the_key() {
        let e = KeyRing::new(&ServeConfig::default(), Some("root:supersecretkey1234")).unwrap_err();
        assert!(e.contains("entry 1") && !e.contains("supersecret"), "{e}");
        let e = KeyRing::new(&ServeConfig::default(), Some("admin:short")).unwrap_err();
        assert!(e.contains("16 characters") && !e.contains("short"), "{e}");
    }

    #[test]
    fn the_rate_limiter_refills() {
        let l = RateLimiter::new(2);
        assert!(l.check("a").is_ok());
        assert!(l.check("a").is_ok());
        match l.check("a") {
            Err(ApiError::RateLimited { retry_after, .. }) => assert!(retry_after >= 1),
            other => panic!("{other:?}"),
        }
        assert!(l.check("b").is_ok(), "buckets are per key");
        assert!(RateLimiter::new(0).check("a").is_ok());
    }
}

/// A role a handler needs, as a type: `Auth<Admin>` in a handler's
/// arguments authenticates the caller and checks the role before the
/// handler runs, so no handler can forget to.
pub trait NeedsRole {
    /// The least role allowed.
    const ROLE: Role;
}

/// Readers and above.
#[derive(Debug)]
pub struct Reader;
/// Scorers and above.
#[derive(Debug)]
pub struct Scorer;
/// Admins.
#[derive(Debug)]
pub struct Admin;

impl NeedsRole for Reader {
    const ROLE: Role = Role::Reader;
}
impl NeedsRole for Scorer {
    const ROLE: Role = Role::Scorer;
}
impl NeedsRole for Admin {
    const ROLE: Role = Role::Admin;
}

/// An authenticated, rate-limited caller whose role is at least `R`'s.
/// Keys come from `Authorization: Bearer KEY` or `X-API-Key: KEY`.
#[derive(Debug)]
pub struct Auth<R>(pub Caller, pub std::marker::PhantomData<R>);

impl<R> Auth<R> {
    /// The caller.
    pub fn caller(&self) -> &Caller {
        &self.0
    }
}

/// The key a request presents: `X-API-Key`, else `Authorization: Bearer`.
pub fn presented_key(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        })
        .map(str::trim)
}

/// Who is calling, with rate limiting: the key from `X-API-Key` or
/// `Authorization: Bearer`, identified in constant time.
pub fn caller(
    state: &super::state::AppState,
    headers: &axum::http::HeaderMap,
) -> Result<Caller, ApiError> {
    let c = state.keys.identify(presented_key(headers))?;
    state.limiter.check(&c.name)?;
    Ok(c)
}

impl<R: NeedsRole + Send + Sync>
    axum::extract::FromRequestParts<std::sync::Arc<super::state::AppState>> for Auth<R>
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &std::sync::Arc<super::state::AppState>,
    ) -> Result<Self, Self::Rejection> {
        let c = caller(state, &parts.headers)?;
        c.require(R::ROLE)?;
        Ok(Auth(c, std::marker::PhantomData))
    }
}
