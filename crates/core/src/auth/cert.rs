//! Client certificates as logins: a certificate the server's TLS layer has
//! verified against its client CA names its holder by subject CN or by a
//! subject alternative name; a [`CertUserMap`] turns that name into a
//! [`Principal`], so a gateway with a certificate needs no SCRAM.
//!
//! A certificate no rule maps is still a valid TLS client; the server then
//! asks for SCRAM as usual (when it has users).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use super::{Principal, Role};

/// What a verified client certificate says about its holder: the subject's
/// common name and the subject alternative names (DNS names, email
/// addresses, URIs; IP addresses in their text form). Cheap to clone: a
/// server hands it to every request of the connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerCertificate(Arc<Names>);

#[derive(Debug, Default, PartialEq, Eq)]
struct Names {
    common_name: Option<String>,
    subject_alt_names: Vec<String>,
}

impl PeerCertificate {
    /// A certificate's identity: its subject CN, if any, and its SANs.
    pub fn new(common_name: Option<String>, subject_alt_names: Vec<String>) -> Self {
        PeerCertificate(Arc::new(Names {
            common_name,
            subject_alt_names,
        }))
    }

    /// The subject's common name.
    pub fn common_name(&self) -> Option<&str> {
        self.0.common_name.as_deref()
    }

    /// The subject alternative names.
    pub fn subject_alt_names(&self) -> &[String] {
        &self.0.subject_alt_names
    }
}

impl fmt::Display for PeerCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.common_name() {
            Some(cn) => write!(f, "CN={cn}")?,
            None => f.write_str("no CN")?,
        }
        if !self.subject_alt_names().is_empty() {
            write!(f, " SAN={}", self.subject_alt_names().join(","))?;
        }
        Ok(())
    }
}

/// Which part of the certificate a [`CertUserRule`] looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertField {
    /// The subject's common name (`cn:`).
    CommonName,
    /// Any subject alternative name (`san:`).
    SubjectAltName,
}

/// One mapping rule: `FIELD:VALUE=USER:ROLE` (see [`CertUserMap`]).
/// `VALUE` `*` matches any value of the field; `USER` `*` names the user
/// after the value matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertUserRule {
    field: CertField,
    value: Option<String>,
    user: Option<String>,
    role: Role,
}

impl CertUserRule {
    /// A rule mapping `field` equal to `value` (`None`: any value) to `user`
    /// (`None`: the value itself) with `role`.
    pub fn new(field: CertField, value: Option<String>, user: Option<String>, role: Role) -> Self {
        CertUserRule {
            field,
            value,
            user,
            role,
        }
    }

    fn apply(&self, peer: &PeerCertificate) -> Option<Principal> {
        let matches = |candidate: &&str| self.value.as_deref().is_none_or(|v| v == *candidate);
        let matched = match self.field {
            CertField::CommonName => peer.common_name().filter(matches),
            CertField::SubjectAltName => peer
                .subject_alt_names()
                .iter()
                .map(String::as_str)
                .find(matches),
        }?;
        let username = self.user.as_deref().unwrap_or(matched);
        Some(Principal::new(username, self.role))
    }
}

impl FromStr for CertUserRule {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        const SHAPE: &str = "expected cn:VALUE=USER:ROLE or san:VALUE=USER:ROLE";
        let (selector, target) = raw.split_once('=').ok_or(SHAPE)?;
        let (field, value) = selector.split_once(':').ok_or(SHAPE)?;
        let field = match field.to_ascii_lowercase().as_str() {
            "cn" => CertField::CommonName,
            "san" => CertField::SubjectAltName,
            other => return Err(format!("unknown certificate field {other:?}: {SHAPE}")),
        };
        let (user, role) = target.rsplit_once(':').ok_or(SHAPE)?;
        if value.is_empty() || user.is_empty() {
            return Err(SHAPE.to_owned());
        }
        let role = role.parse::<Role>().map_err(|error| error.to_string())?;
        let wildcard = |s: &str| (s != "*").then(|| s.to_owned());
        Ok(CertUserRule::new(
            field,
            wildcard(value),
            wildcard(user),
            role,
        ))
    }
}

impl fmt::Display for CertUserRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = match self.field {
            CertField::CommonName => "cn",
            CertField::SubjectAltName => "san",
        };
        let value = self.value.as_deref().unwrap_or("*");
        let user = self.user.as_deref().unwrap_or("*");
        write!(f, "{field}:{value}={user}:{}", self.role)
    }
}

/// Maps verified client certificates to principals.
///
/// The rules are tried in order; the first that matches decides:
///
/// | rule (`FromStr`) | matches | principal |
/// | --- | --- | --- |
/// | `cn:gateway-7=gw7:operator` | subject CN `gateway-7` | `gw7`, operator |
/// | `san:gw7.example.com=gw7:reader` | a DNS, email or URI SAN `gw7.example.com` | `gw7`, reader |
/// | `cn:*=*:reader` | any certificate with a CN | the CN itself, reader |
///
/// ```
/// use hs_core::auth::{CertUserMap, PeerCertificate, Role};
///
/// let map = CertUserMap::new()
///     .rule("cn:gateway-7=gw7:operator".parse()?)
///     .rule("san:*=*:reader".parse()?);
/// let gateway = PeerCertificate::new(Some("gateway-7".into()), vec![]);
/// assert_eq!(map.principal(&gateway).map(|p| p.role), Some(Role::Operator));
/// let other = PeerCertificate::new(None, vec!["meter.example.com".into()]);
/// assert_eq!(map.principal(&other).unwrap().username, "meter.example.com");
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertUserMap {
    rules: Vec<CertUserRule>,
}

impl CertUserMap {
    /// An empty map: no certificate stands for a login.
    pub fn new() -> Self {
        CertUserMap::default()
    }

    /// Adds a rule after the existing ones.
    #[must_use]
    pub fn rule(mut self, rule: CertUserRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// The rules, in the order they are tried.
    pub fn rules(&self) -> &[CertUserRule] {
        &self.rules
    }

    /// Whether the map has no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The principal `peer` stands for, if a rule maps it.
    pub fn principal(&self, peer: &PeerCertificate) -> Option<Principal> {
        self.rules.iter().find_map(|rule| rule.apply(peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(cn: Option<&str>, sans: &[&str]) -> PeerCertificate {
        PeerCertificate::new(
            cn.map(str::to_owned),
            sans.iter().map(|s| (*s).to_owned()).collect(),
        )
    }

    #[test]
    fn rules_parse_and_print_back() {
        for raw in [
            "cn:gateway-7=gw7:operator",
            "san:gw7.example.com=gw7:reader",
            "cn:*=*:admin",
        ] {
            let rule: CertUserRule = raw.parse().unwrap();
            assert_eq!(rule.to_string(), raw);
        }
        // A role named like a user's role elsewhere ("viewer") is a reader.
        let rule: CertUserRule = "CN:x=y:viewer".parse().unwrap();
        assert_eq!(rule.to_string(), "cn:x=y:reader");
        for bad in [
            "gateway",
            "cn=gw:reader",
            "ou:x=y:reader",
            "cn:x=y",
            "cn:x=y:boss",
            "cn:=y:reader",
            "cn:x=:reader",
        ] {
            assert!(bad.parse::<CertUserRule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let map = CertUserMap::new()
            .rule("cn:gateway-7=gw7:operator".parse().unwrap())
            .rule("san:meter.example.com=meter:reader".parse().unwrap())
            .rule("cn:*=*:reader".parse().unwrap());
        let gw = map.principal(&peer(Some("gateway-7"), &[])).unwrap();
        assert_eq!((gw.username.as_str(), gw.role), ("gw7", Role::Operator));
        let meter = map
            .principal(&peer(
                Some("anything"),
                &["x.example.com", "meter.example.com"],
            ))
            .unwrap();
        // The SAN rule comes before the wildcard CN rule.
        assert_eq!(
            (meter.username.as_str(), meter.role),
            ("meter", Role::Reader)
        );
        let named = map.principal(&peer(Some("boiler"), &[])).unwrap();
        assert_eq!(
            (named.username.as_str(), named.role),
            ("boiler", Role::Reader)
        );
        assert_eq!(map.principal(&peer(None, &["other.example.com"])), None);
        assert_eq!(CertUserMap::new().principal(&peer(Some("gw"), &[])), None);
    }
}
