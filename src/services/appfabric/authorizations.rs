//! App authorizations: the credentials AppFabric uses to call a SaaS application.
//!
//! Credentials are secrets: they are sealed with the server's key before they are stored
//! (`crypto.rs`), never returned by any operation, and their types print as `<redacted>`, so
//! no log line can carry them.
//!
//! Status, following AWS's documented states: every authorization starts `PendingConnect`
//! (AWS: "the initial state of the app authorization"), for `apiKey` as for `oauth2`;
//! ConnectAppAuthorization makes it `Connected`. For `oauth2` Connect needs `authRequest`
//! (AWS: "required if the app authorization ... is configured with an OAuth2 authorization
//! type"); Sluice has no SaaS application to exchange the code with, so the code is accepted
//! and dropped, never stored. Updating the credential puts the authorization back to
//! `PendingConnect` (the new secret has not been tried yet). `authUrl`, the consent page AWS
//! builds per application for `oauth2`, is not returned: Sluice cannot know the application's
//! real OAuth endpoint and a made-up URL would mislead.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::bundles::{self, BundleRecord};
use super::connectors::ApiKey;
use super::crypto::Sealed;
use super::idempotency::{recall, Recall};
use super::ingestions::IngestionRecord;
use super::quotas::APP_AUTHORIZATIONS;
use super::Deps;
use super::{
    key, now_seconds, resolve, resource_arn, tags_from_list, AppFabricError, Kind, Tag, Tags,
    APP_AUTHORIZATION, DEFAULT_MAX_RESULTS, INGESTION,
};
use crate::protocol::model::Iso8601;
use crate::protocol::RequestContext;
use crate::services::kit::{self, load, load_records, put, retry, Pages};
use crate::store::{Expect, Write};

/// The `Credential` union of the model. Never printed, never returned.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credential {
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key_credential: Option<ApiKeyCredential>,
    #[serde(skip_serializing_if = "Option::is_none")]
    oauth2_credential: Option<Oauth2Credential>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiKeyCredential {
    api_key: String,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Oauth2Credential {
    client_id: String,
    client_secret: String,
}

impl Credential {
    /// The `authType` this credential belongs to.
    fn auth_type(&self) -> &'static str {
        if self.oauth2_credential.is_some() {
            "oauth2"
        } else {
            "apiKey"
        }
    }

    fn check_type(&self, auth_type: &str) -> Result<(), AppFabricError> {
        if self.auth_type() == auth_type {
            return Ok(());
        }
        let member = if auth_type == "oauth2" {
            "oauth2Credential"
        } else {
            "apiKeyCredential"
        };
        Err(AppFabricError::field(
            "credential",
            format!(
                "An app authorization of authType '{auth_type}' needs a credential with {member}"
            ),
        ))
    }

    fn seal(&self, deps: &Deps, arn: &str) -> Result<Sealed, AppFabricError> {
        let plaintext = serde_json::to_vec(self)
            .map_err(|err| crate::store::StoreError::Unavailable(err.to_string()))?;
        Ok(deps.credentials.seal(&plaintext, arn))
    }
}

/// `Tenant`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    tenant_identifier: String,
    tenant_display_name: String,
}

/// `AuthRequest`: the OAuth2 code is a secret too.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthRequest {
    #[allow(dead_code)]
    redirect_uri: String,
    #[allow(dead_code)]
    code: String,
}

impl std::fmt::Debug for AuthRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthRequest(<redacted>)")
    }
}

/// An app authorization as stored; the credential only sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct AuthorizationRecord {
    pub id: String,
    pub bundle_id: String,
    pub arn: String,
    pub app_bundle_arn: String,
    app: String,
    tenant: Tenant,
    auth_type: String,
    status: String,
    credential: Sealed,
    /// Epoch seconds.
    created_at: f64,
    updated_at: f64,
    #[serde(default)]
    pub tags: Tags,
}

impl AuthorizationRecord {
    fn name(&self) -> String {
        format!("{}/{}", self.bundle_id, self.id)
    }

    /// Whether this authorization is the one an ingestion of `app` for `tenant_id` uses.
    pub fn serves(&self, app: &str, tenant_id: &str) -> bool {
        self.app == app && self.tenant.tenant_identifier == tenant_id
    }

    /// Whether ConnectAppAuthorization succeeded for the current credential.
    pub fn is_connected(&self) -> bool {
        self.status == "Connected"
    }

    /// The API key, opened for one call; `None` for an OAuth2 credential or a record that
    /// cannot be opened.
    pub fn api_key(&self, cipher: &super::CredentialCipher) -> Option<ApiKey> {
        let plain = cipher.open(&self.credential, &self.arn).ok()?;
        let credential: Credential = serde_json::from_slice(&plain).ok()?;
        credential.api_key_credential.map(|c| ApiKey(c.api_key))
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppAuthorization {
    app_authorization_arn: String,
    app_bundle_arn: String,
    app: String,
    tenant: Tenant,
    auth_type: String,
    status: String,
    created_at: Iso8601,
    updated_at: Iso8601,
}

impl From<&AuthorizationRecord> for AppAuthorization {
    fn from(r: &AuthorizationRecord) -> Self {
        AppAuthorization {
            app_authorization_arn: r.arn.clone(),
            app_bundle_arn: r.app_bundle_arn.clone(),
            app: r.app.clone(),
            tenant: r.tenant.clone(),
            auth_type: r.auth_type.clone(),
            status: r.status.clone(),
            created_at: Iso8601(r.created_at),
            updated_at: Iso8601(r.updated_at),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    app_authorization_arn: String,
    app_bundle_arn: String,
    app: String,
    tenant: Tenant,
    status: String,
    updated_at: Iso8601,
}

impl From<&AuthorizationRecord> for Summary {
    fn from(r: &AuthorizationRecord) -> Self {
        Summary {
            app_authorization_arn: r.arn.clone(),
            app_bundle_arn: r.app_bundle_arn.clone(),
            app: r.app.clone(),
            tenant: r.tenant.clone(),
            status: r.status.clone(),
            updated_at: Iso8601(r.updated_at),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationOutput {
    app_authorization: AppAuthorization,
}

/// CreateAppAuthorization input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateInput {
    app_bundle_identifier: String,
    app: String,
    credential: Credential,
    tenant: Tenant,
    auth_type: String,
    client_token: Option<String>,
    tags: Option<Vec<Tag>>,
}

/// Get and Delete input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationInput {
    app_bundle_identifier: String,
    app_authorization_identifier: String,
}

/// UpdateAppAuthorization input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateInput {
    app_bundle_identifier: String,
    app_authorization_identifier: String,
    credential: Option<Credential>,
    tenant: Option<Tenant>,
}

/// ConnectAppAuthorization input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectInput {
    app_bundle_identifier: String,
    app_authorization_identifier: String,
    auth_request: Option<AuthRequest>,
}

/// ListAppAuthorizations input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListInput {
    app_bundle_identifier: String,
    max_results: Option<usize>,
    next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListOutput {
    app_authorization_summary_list: Vec<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

async fn find(
    deps: &Deps,
    ctx: &RequestContext,
    bundle_identifier: &str,
    identifier: &str,
) -> Result<(BundleRecord, i64, AuthorizationRecord, i64), AppFabricError> {
    let (bundle, bundle_version) = bundles::find(deps, ctx, bundle_identifier).await?;
    let id = resolve(ctx, identifier, Kind::AppAuthorization, &[&bundle.id])?;
    let (record, version) = load(
        deps,
        &key(ctx, APP_AUTHORIZATION, &format!("{}/{id}", bundle.id)),
    )
    .await?
    .ok_or_else(|| AppFabricError::not_found("AppAuthorization", identifier))?;
    Ok((bundle, bundle_version, record, version))
}

/// CreateAppAuthorization.
pub async fn create(
    deps: &Deps,
    ctx: &RequestContext,
    input: CreateInput,
) -> Result<AuthorizationOutput, AppFabricError> {
    input.credential.check_type(&input.auth_type)?;
    let tags = tags_from_list(input.tags.clone())?;
    let (input, tags) = (&input, &tags);
    retry(move || async move {
        let (bundle, bundle_version) =
            bundles::find(deps, ctx, &input.app_bundle_identifier).await?;
        // The credential is part of the fingerprint, which is a keyed HMAC: it reveals nothing.
        let params = json!({
            "appBundle": bundle.id, "app": input.app, "tenant": input.tenant,
            "authType": input.auth_type, "credential": input.credential, "tags": tags,
        });
        let claim = match recall(
            deps,
            ctx,
            "CreateAppAuthorization",
            input.client_token.as_deref(),
            &params,
        )
        .await?
        {
            Recall::Replay(response) => return Ok(kit::from_value(response)?),
            Recall::Fresh(claim) => claim,
        };
        let siblings = load_records::<AuthorizationRecord>(
            deps,
            ctx,
            APP_AUTHORIZATION,
            &format!("{}/", bundle.id),
        )
        .await?;
        if let Some((_, twin, _)) = siblings.iter().find(|(_, s, _)| {
            s.app == input.app && s.tenant.tenant_identifier == input.tenant.tenant_identifier
        }) {
            return Err(AppFabricError::Conflict {
                message: format!(
                    "An app authorization of {} for tenant {} already exists: {}",
                    input.app, input.tenant.tenant_identifier, twin.arn
                ),
                resource_id: twin.arn.clone(),
                resource_type: "AppAuthorization",
            });
        }
        APP_AUTHORIZATIONS.check(siblings.len(), &bundle.arn)?;
        let id = uuid::Uuid::new_v4().to_string();
        let arn = resource_arn(
            ctx,
            &format!("appbundle/{}/appauthorization/{id}", bundle.id),
        );
        let now = now_seconds(ctx);
        let record = AuthorizationRecord {
            credential: input.credential.seal(deps, &arn)?,
            arn,
            id,
            bundle_id: bundle.id.clone(),
            app_bundle_arn: bundle.arn.clone(),
            app: input.app.clone(),
            tenant: input.tenant.clone(),
            auth_type: input.auth_type.clone(),
            status: "PendingConnect".to_owned(),
            created_at: now,
            updated_at: now,
            tags: tags.clone(),
        };
        let response = AuthorizationOutput {
            app_authorization: AppAuthorization::from(&record),
        };
        let mut batch = vec![
            put(
                key(ctx, APP_AUTHORIZATION, &record.name()),
                &record,
                Expect::Absent,
            )?,
            bundles::touch(ctx, &bundle, bundle_version)?,
        ];
        batch.extend(claim.remember(&kit::to_value(&response)?)?);
        deps.store.write(batch).await?;
        Ok(response)
    })
    .await
}

/// GetAppAuthorization.
pub async fn get(
    deps: &Deps,
    ctx: &RequestContext,
    input: AuthorizationInput,
) -> Result<AuthorizationOutput, AppFabricError> {
    let (_, _, record, _) = find(
        deps,
        ctx,
        &input.app_bundle_identifier,
        &input.app_authorization_identifier,
    )
    .await?;
    Ok(AuthorizationOutput {
        app_authorization: AppAuthorization::from(&record),
    })
}

/// ConnectAppAuthorization output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectOutput {
    app_authorization_summary: Summary,
}

/// ListAppAuthorizations.
pub async fn list(
    deps: &Deps,
    ctx: &RequestContext,
    input: ListInput,
) -> Result<ListOutput, AppFabricError> {
    let (bundle, _) = bundles::find(deps, ctx, &input.app_bundle_identifier).await?;
    let prefix = format!("{}/", bundle.id);
    let (records, next_token) = Pages::new(deps, ctx, "appfabric:ListAppAuthorizations", &prefix)
        .records::<AuthorizationRecord, AppFabricError>(
            APP_AUTHORIZATION,
            &prefix,
            input.next_token.as_deref(),
            input.max_results.unwrap_or(DEFAULT_MAX_RESULTS),
        )
        .await?;
    Ok(ListOutput {
        app_authorization_summary_list: records.iter().map(Summary::from).collect(),
        next_token,
    })
}

/// UpdateAppAuthorization: a new credential (of the same auth type) and/or tenant.
pub async fn update(
    deps: &Deps,
    ctx: &RequestContext,
    input: UpdateInput,
) -> Result<AuthorizationOutput, AppFabricError> {
    let input = &input;
    retry(move || async move {
        let (_, _, mut record, version) = find(
            deps,
            ctx,
            &input.app_bundle_identifier,
            &input.app_authorization_identifier,
        )
        .await?;
        if let Some(credential) = &input.credential {
            credential.check_type(&record.auth_type)?;
            record.credential = credential.seal(deps, &record.arn)?;
            record.status = "PendingConnect".to_owned();
        }
        if let Some(tenant) = &input.tenant {
            record.tenant = tenant.clone();
        }
        record.updated_at = now_seconds(ctx).max(record.updated_at);
        deps.store
            .write(vec![put(
                key(ctx, APP_AUTHORIZATION, &record.name()),
                &record,
                Expect::Version(version),
            )?])
            .await?;
        Ok(AuthorizationOutput {
            app_authorization: AppAuthorization::from(&record),
        })
    })
    .await
}

/// ConnectAppAuthorization: `PendingConnect` (or a failed state) -> `Connected`.
///
/// For an `apiKey` authorization of an app Sluice has a connector for, the key is first tried
/// with one call to the app (AWS validates the credential the same way); when the app refuses
/// it or cannot be reached, the status becomes `ConnectionValidationFailed` instead.
pub async fn connect(
    deps: &Deps,
    ctx: &RequestContext,
    input: ConnectInput,
) -> Result<ConnectOutput, AppFabricError> {
    let input = &input;
    let (_, _, record, _) = find(
        deps,
        ctx,
        &input.app_bundle_identifier,
        &input.app_authorization_identifier,
    )
    .await?;
    if record.auth_type == "oauth2" && input.auth_request.is_none() {
        return Err(AppFabricError::field(
            "authRequest",
            "authRequest is required to connect an app authorization of authType 'oauth2'",
        ));
    }
    let mut status = "Connected";
    if let (Some(connector), Some(api_key)) = (
        deps.apps.connector(&record.app),
        record.api_key(&deps.credentials),
    ) {
        let base = deps
            .apps
            .base(connector.as_ref(), &record.tenant.tenant_identifier);
        let validated = match deps.apps.http().await {
            Ok(http) => connector.validate(http, &base, &api_key).await,
            Err(err) => Err(err),
        };
        if let Err(err) = validated {
            tracing::info!(authorization = %record.arn, error = %err, "The app did not accept the credential; the app authorization is ConnectionValidationFailed.");
            status = "ConnectionValidationFailed";
        }
    }
    retry(move || async move {
        let (_, _, mut record, version) = find(
            deps,
            ctx,
            &input.app_bundle_identifier,
            &input.app_authorization_identifier,
        )
        .await?;
        record.status = status.to_owned();
        record.updated_at = now_seconds(ctx).max(record.updated_at);
        deps.store
            .write(vec![put(
                key(ctx, APP_AUTHORIZATION, &record.name()),
                &record,
                Expect::Version(version),
            )?])
            .await?;
        Ok(ConnectOutput {
            app_authorization_summary: Summary::from(&record),
        })
    })
    .await
}

/// DeleteAppAuthorization: refused (ValidationException, the model lists no ConflictException)
/// while an ingestion of the same app and tenant uses it.
pub async fn delete(
    deps: &Deps,
    ctx: &RequestContext,
    input: AuthorizationInput,
) -> Result<(), AppFabricError> {
    let input = &input;
    retry(move || async move {
        let (bundle, bundle_version, record, version) = find(
            deps,
            ctx,
            &input.app_bundle_identifier,
            &input.app_authorization_identifier,
        )
        .await?;
        let ingestions = load_records::<IngestionRecord>(
            deps,
            ctx,
            INGESTION,
            &format!("{}/", record.bundle_id),
        )
        .await?;
        if let Some((_, user, _)) = ingestions
            .iter()
            .find(|(_, i, _)| record.serves(&i.app, &i.tenant_id))
        {
            return Err(AppFabricError::refused(format!(
                "App authorization {} is used by ingestion {}; delete the ingestion first",
                record.arn, user.arn
            )));
        }
        let batch: Vec<Write> = vec![
            Write::Delete {
                key: key(ctx, APP_AUTHORIZATION, &record.name()),
                expect: Expect::Version(version),
            },
            bundles::touch(ctx, &bundle, bundle_version)?,
        ];
        deps.store.write(batch).await?;
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let credential: Credential =
            serde_json::from_value(json!({"apiKeyCredential": {"apiKey": "top-secret"}}))
                .expect("credential");
        let auth: AuthRequest =
            serde_json::from_value(json!({"redirectUri": "https://x", "code": "c0de-secret"}))
                .expect("auth request");
        let printed = format!("{credential:?} {auth:?}");
        assert!(!printed.contains("top-secret") && !printed.contains("c0de-secret"));
        assert_eq!(credential.auth_type(), "apiKey");
        assert!(credential.check_type("oauth2").is_err());
    }
}
