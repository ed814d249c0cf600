//! Moving the champion alias, and the audit log of every move: a run's
//! champion/challenger decision, a forced promotion, a promotion or a
//! rollback by hand.

use churnguard_store::Store;

use super::Result;
use super::TrainRunSummary;
use crate::registry::Registry;

/// Records a training run's champion decision in the audit log:
/// `model.promoted` (or `model.force_promoted`) when the alias moved,
/// `model.not_promoted` when it did not, with the comparison behind it.
pub async fn record_training(store: &Store, summary: &TrainRunSummary, actor: &str) -> Result<()> {
    let c = &summary.comparison;
    let action = match (c.promoted, c.reason.contains("--force-promote")) {
        (true, true) => "model.force_promoted",
        (true, false) => "model.promoted",
        (false, _) => "model.not_promoted",
    };
    let details = serde_json::json!({
        "versions": summary.ids,
        "current": c.current,
        "current_auc": c.current_auc,
        "challenger_auc": c.challenger_auc,
        "validation_rows": c.rows,
        "reason": c.reason,
    });
    store
        .audit(actor, action, &summary.champion_id, &details)
        .await?;
    Ok(())
}

/// Makes a version the champion by hand, and logs it.
pub async fn promote(store: &Store, registry: &Registry, id: &str, actor: &str) -> Result<()> {
    let before = registry.champion()?;
    registry.promote(id)?;
    store
        .audit(
            actor,
            "model.promoted",
            id,
            &serde_json::json!({ "previous": before, "by_hand": true }),
        )
        .await?;
    Ok(())
}

/// Restores the previous champion, and logs it; returns the restored id.
pub async fn rollback(store: &Store, registry: &Registry, actor: &str) -> Result<String> {
    let before = registry.champion()?;
    let restored = registry.rollback()?;
    store
        .audit(
            actor,
            "model.rolled_back",
            &restored,
            &serde_json::json!({ "previous": before }),
        )
        .await?;
    Ok(restored)
}

/// Makes a version the shadow challenger (`Some`) or removes it (`None`),
/// and logs it; returns the id set.
pub async fn set_shadow(
    store: &Store,
    registry: &Registry,
    id: Option<&str>,
    actor: &str,
) -> Result<Option<String>> {
    let before = registry.shadow()?;
    let now = match id {
        Some(id) => Some(registry.set_shadow(id)?),
        None => {
            registry.clear_shadow()?;
            None
        }
    };
    let (action, subject) = match &now {
        Some(id) => ("model.shadow_set", id.clone()),
        None => ("model.shadow_cleared", before.clone().unwrap_or_default()),
    };
    store
        .audit(
            actor,
            action,
            &subject,
            &serde_json::json!({ "previous": before, "champion": registry.champion()? }),
        )
        .await?;
    Ok(now)
}

/// Promotes the shadow challenger to champion and logs it with the
/// comparison it was promoted on (`evidence`, what the monitor showed);
/// returns the new and the previous champion. `rollback` undoes it.
pub async fn promote_shadow(
    store: &Store,
    registry: &Registry,
    evidence: &serde_json::Value,
    actor: &str,
) -> Result<(String, Option<String>)> {
    let (promoted, previous) = registry.promote_shadow()?;
    store
        .audit(
            actor,
            "model.promoted_from_shadow",
            &promoted,
            &serde_json::json!({ "previous": previous, "comparison": evidence }),
        )
        .await?;
    Ok((promoted, previous))
}
