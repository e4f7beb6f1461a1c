//! Who is calling and what they may do. Every use-case authorizes its caller first, here in the
//! service layer, so no transport can reach one project's data with another project's credential.

use serde::{Deserialize, Serialize};

use crate::ServiceError;

/// The operations a policy grants or denies, named as FRS's audit events (CTS) name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    DetectFace,
    CompareFace,
    CreateFaceSet,
    ListFaceSets,
    ShowFaceSet,
    DeleteFaceSet,
    AddFaces,
    ShowFaces,
    UpdateFace,
    DeleteFaces,
    SearchFace,
    /// Exchanging a signed request for a token (`POST /v3/auth/tokens`); every policy may.
    CreateToken,
}

impl Action {
    /// Every action, for tables and tests.
    pub const ALL: [Action; 12] = [
        Action::DetectFace,
        Action::CompareFace,
        Action::CreateFaceSet,
        Action::ListFaceSets,
        Action::ShowFaceSet,
        Action::DeleteFaceSet,
        Action::AddFaces,
        Action::ShowFaces,
        Action::UpdateFace,
        Action::DeleteFaces,
        Action::SearchFace,
        Action::CreateToken,
    ];

    /// The stable name used in audit records, metrics and permission errors (`createFaceSet`, …).
    pub fn name(self) -> &'static str {
        match self {
            Action::DetectFace => "detectFace",
            Action::CompareFace => "compareFace",
            Action::CreateFaceSet => "createFaceSet",
            Action::ListFaceSets => "listFaceSets",
            Action::ShowFaceSet => "showFaceSet",
            Action::DeleteFaceSet => "deleteFaceSet",
            Action::AddFaces => "addFaces",
            Action::ShowFaces => "showFaces",
            Action::UpdateFace => "updateFace",
            Action::DeleteFaces => "deleteFaces",
            Action::SearchFace => "searchFace",
            Action::CreateToken => "createToken",
        }
    }

    /// True for the actions that change stored state.
    pub fn is_mutating(self) -> bool {
        match self {
            Action::CreateFaceSet
            | Action::DeleteFaceSet
            | Action::AddFaces
            | Action::UpdateFace
            | Action::DeleteFaces => true,
            Action::DetectFace
            | Action::CompareFace
            | Action::ListFaceSets
            | Action::ShowFaceSet
            | Action::ShowFaces
            | Action::SearchFace
            | Action::CreateToken => false,
        }
    }

    /// True for the actions recorded in the audit log: the mutating ones and token issuance.
    pub fn is_audited(self) -> bool {
        self.is_mutating() || self == Action::CreateToken
    }
}

/// What a credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Every action (FRS FullAccess).
    Full,
    /// Everything that changes nothing: detect, compare, show and list, search (FRS ReadOnlyAccess).
    ReadOnly,
    /// Detect, compare and search only (e.g. a camera gate that must not read the library's listing),
    /// and tokens for those.
    SearchOnly,
}

impl Policy {
    /// Whether this policy grants `action`.
    pub fn allows(self, action: Action) -> bool {
        match self {
            Policy::Full => true,
            Policy::ReadOnly => !action.is_mutating(),
            Policy::SearchOnly => {
                matches!(action, Action::DetectFace | Action::CompareFace | Action::SearchFace | Action::CreateToken)
            }
        }
    }

    /// The wire and CLI name (`full`, `read-only`, `search-only`).
    pub fn name(self) -> &'static str {
        match self {
            Policy::Full => "full",
            Policy::ReadOnly => "read-only",
            Policy::SearchOnly => "search-only",
        }
    }
}

impl std::str::FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "full" => Ok(Policy::Full),
            "read-only" => Ok(Policy::ReadOnly),
            "search-only" => Ok(Policy::SearchOnly),
            other => Err(format!("unknown policy {other:?}: use full, read-only or search-only")),
        }
    }
}

/// An authenticated caller: the credential's project and policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The access key the request was signed with (or its token was issued to); `None` when
    /// authentication is disabled.
    pub access_key: Option<String>,
    /// The only project this caller may act on.
    pub project_id: String,
    pub policy: Policy,
}

impl Caller {
    /// A caller with every right on `project_id`, for servers run with authentication disabled
    /// and for the operator's own tools.
    pub fn unauthenticated(project_id: &str) -> Caller {
        Caller { access_key: None, project_id: project_id.to_owned(), policy: Policy::Full }
    }

    /// Checks that this caller may perform `action` on `project_id`: the project must be the
    /// caller's own (`FRS.0028` otherwise), and the policy must grant the action.
    pub fn authorize(&self, project_id: &str, action: Action) -> Result<(), ServiceError> {
        if project_id != self.project_id {
            return Err(ServiceError::ProjectMismatch);
        }
        if !self.policy.allows(action) {
            return Err(ServiceError::Forbidden(action.name()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_grant_what_their_names_say() {
        for action in Action::ALL {
            assert!(Policy::Full.allows(action));
            assert_eq!(Policy::ReadOnly.allows(action), !action.is_mutating(), "{action:?}");
        }
        let search_only: Vec<Action> = Action::ALL.into_iter().filter(|a| Policy::SearchOnly.allows(*a)).collect();
        assert_eq!(search_only, [Action::DetectFace, Action::CompareFace, Action::SearchFace, Action::CreateToken]);
        for policy in [Policy::Full, Policy::ReadOnly, Policy::SearchOnly] {
            assert_eq!(policy.name().parse::<Policy>(), Ok(policy));
        }
    }

    #[test]
    fn another_project_is_refused_before_the_policy_is_checked() {
        let caller = Caller { access_key: Some("AK".into()), project_id: "p1".into(), policy: Policy::ReadOnly };
        assert!(caller.authorize("p1", Action::SearchFace).is_ok());
        assert!(matches!(caller.authorize("p2", Action::SearchFace), Err(ServiceError::ProjectMismatch)));
        assert!(matches!(caller.authorize("p2", Action::AddFaces), Err(ServiceError::ProjectMismatch)));
        assert!(matches!(caller.authorize("p1", Action::AddFaces), Err(ServiceError::Forbidden("addFaces"))));
    }
}
