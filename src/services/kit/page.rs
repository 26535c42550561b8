//! The one paginator of List and Describe operations.
//!
//! A page token is signed state (`TokenSigner`) holding the name of the last item of the page
//! before, bound to a scope: the operation, the caller's account and region, and the filter
//! that shaped the list (a prefix ...), so a token replayed with another filter or by another
//! account is refused. Records are read in name order, one more than the page holds, which
//! says whether a next page follows without a second query.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::{Encoded, ServiceError};
use crate::protocol::RequestContext;
use crate::services::Deps;
use crate::store::{Range, StoreError};
use crate::token::TokenError;

/// Pages of one list request.
pub struct Pages<'a> {
    deps: &'a Deps,
    ctx: &'a RequestContext,
    scope: String,
}

impl<'a> Pages<'a> {
    /// Pages of `operation` (`logs:DescribeDestinations`) for the caller, under `filter` (the
    /// prefix or any other input that shapes the list; empty when none does).
    pub fn new(deps: &'a Deps, ctx: &'a RequestContext, operation: &str, filter: &str) -> Self {
        let scope = format!("{operation}:{}:{}:{filter}", ctx.account_id, ctx.region);
        Pages { deps, ctx, scope }
    }

    /// The name after which the page starts: `None` without a token.
    pub fn after<E: ServiceError>(&self, token: Option<&str>) -> Result<Option<String>, E> {
        let Some(token) = token else {
            return Ok(None);
        };
        let state = self
            .deps
            .tokens
            .open(&self.scope, token, self.ctx.received_at_millis())
            .map_err(|err| E::invalid_token(err, token))?;
        match state.get("after").and_then(Value::as_str) {
            Some(after) => Ok(Some(after.to_owned())),
            None => Err(E::invalid_token(TokenError::Invalid, token)),
        }
    }

    /// The token of the page that follows the item named `last`.
    pub fn token_after(&self, last: &str) -> String {
        self.deps.tokens.issue(
            &self.scope,
            json!({ "after": last }),
            self.ctx.received_at_millis(),
        )
    }

    /// One page of stored records of `kind` whose names start with `prefix`, from the
    /// position in `token`: at most `limit` records, and the next page's token when there is
    /// one.
    pub async fn records<T: crate::store::Stored, E: ServiceError>(
        &self,
        kind: &'static str,
        prefix: &str,
        token: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<T>, Option<String>), E> {
        let after = self.after::<E>(token)?;
        self.records_after(kind, prefix, after.as_deref(), limit)
            .await
    }

    /// [`Pages::records`] from a position already known (`ExclusiveStartStreamName` ...).
    pub async fn records_after<T: crate::store::Stored, E: ServiceError>(
        &self,
        kind: &'static str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<T>, Option<String>), E> {
        self.page_as(kind, prefix, after, limit, |body| {
            crate::store::decode_body(kind, body)
        })
        .await
    }

    /// [`Pages::records_after`] with each item in its wire form `W`, made from the stored `R`
    /// by `wire`. Each stored version is decoded and encoded once and kept in the read cache,
    /// so a page is written by copying bytes. `wire` must depend on the record and the
    /// caller's account and Region only: its output is handed to every later reader.
    pub async fn encoded_after<R, W, E>(
        &self,
        kind: &'static str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        wire: impl Fn(R) -> W,
    ) -> Result<(Vec<Encoded<W>>, Option<String>), E>
    where
        R: DeserializeOwned,
        W: Serialize + 'static,
        E: ServiceError,
    {
        self.page_as(kind, prefix, after, limit, |body| {
            Encoded::new(&wire(crate::store::decode_body(kind, body)?))
        })
        .await
    }

    /// One page of values derived from stored records by `derive`.
    async fn page_as<V, E: ServiceError>(
        &self,
        kind: &'static str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        derive: impl Fn(&Value) -> Result<V, StoreError>,
    ) -> Result<(Vec<V>, Option<String>), E>
    where
        V: Clone + Send + Sync + 'static,
    {
        let range = Range {
            kind,
            account: &self.ctx.account_id,
            region: &self.ctx.region,
            prefix,
            after,
            limit: limit + 1,
        };
        // Derived in place from the read cache: no copy of the stored documents.
        let mut records =
            crate::store::load_range_as(self.deps.store.as_ref(), range, derive).await?;
        let more = records.len() > limit;
        records.truncate(limit);
        let next = match records.last() {
            Some((last, _, _)) if more => Some(self.token_after(&last.name)),
            _ => None,
        };
        let items = records.into_iter().map(|(_, item, _)| item).collect();
        Ok((items, next))
    }

    /// One page of a list already read and filtered to the items after the token's position
    /// (for lists filtered beyond a name prefix): the first `limit` items, and the next
    /// page's token, named by `name`, when more follow.
    pub fn slice<T>(
        &self,
        mut items: Vec<T>,
        limit: usize,
        name: impl Fn(&T) -> &str,
    ) -> (Vec<T>, Option<String>) {
        let more = items.len() > limit;
        items.truncate(limit);
        let next = match items.last() {
            Some(last) if more => Some(self.token_after(name(last))),
            _ => None,
        };
        (items, next)
    }
}
