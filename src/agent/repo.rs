//! The SQL for agents, agent groups, their members and agents' API keys. The API and the
//! CLI both call these; every query is scoped to one tenant.

use sqlx::postgres::PgRow;
use sqlx::{Connection, PgConnection, Row};
use uuid::Uuid;

use super::{
    Agent, AgentGroup, AgentId, AgentInput, AgentSettings, AgentStatus, GroupId, GroupInput,
    StatusNow, StatusRefusal, WorkTime, check_status_change, parse_group_name,
};
use crate::auth::{CreatedKey, KeyHasher, Role};
use crate::campaign::settings::{SettingError, WeekDays};
use crate::tenant::TenantId;

/// Why an agent or group operation did not happen; the API turns each into its status.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("no agent {0}")]
    NotFound(AgentId),
    #[error("no agent group {0}")]
    GroupNotFound(GroupId),
    #[error(transparent)]
    Invalid(#[from] SettingError),
    #[error("status `{0}` is set by the call flow; people choose available, break or offline")]
    SetByCallFlow(AgentStatus),
    #[error(
        "the agent is on {active_calls} call(s), as many as they may take; they become available when a call ends (break and offline are allowed now and apply to future offers)"
    )]
    OnCall { active_calls: i32 },
    #[error(
        "the agent is in wrap-up: post the disposition of call {call} with POST /api/v1/calls/{call}/disposition, which makes them available"
    )]
    DispositionOwed { call: i64 },
    #[error("the agent's status kept changing under the call flow; try again")]
    StatusRaced,
    #[error("an agent group named `{0}` already exists")]
    GroupNameTaken(String),
    #[error(
        "campaign(s) {campaigns} offer their calls to this group; give them another group first"
    )]
    GroupInUse { campaigns: String },
    #[error("agent {agent} is not a member of group {group}")]
    NotMember { agent: AgentId, group: GroupId },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<StatusRefusal> for AgentError {
    fn from(r: StatusRefusal) -> Self {
        match r {
            StatusRefusal::SetByCallFlow(s) => AgentError::SetByCallFlow(s),
            StatusRefusal::OnCall { active_calls } => AgentError::OnCall { active_calls },
            StatusRefusal::DispositionOwed { call } => AgentError::DispositionOwed { call },
        }
    }
}

/// The columns of `Agent` (from `agents a`), as a macro so queries stay literals.
/// `time` columns are read as minutes: chrono cannot hold `24:00`.
macro_rules! agent_columns {
    () => {
        "a.id, a.name, a.endpoint, a.status, a.status_changed_at, a.idle_since, \
         a.max_concurrent_calls, a.active_calls, a.time_zone, \
         (extract(epoch FROM a.work_start) / 60)::int AS work_start_min, \
         (extract(epoch FROM a.work_end) / 60)::int AS work_end_min, \
         a.work_days, a.missed_offers, a.created_at, a.updated_at, \
         ARRAY(SELECT m.group_id FROM agent_group_members m WHERE m.agent_id = a.id ORDER BY m.group_id) AS groups"
    };
}

fn stored_status(raw: &str) -> Result<AgentStatus, sqlx::Error> {
    AgentStatus::parse(raw).map_err(|e| sqlx::Error::Decode(e.to_string().into()))
}

fn agent_from_row(r: &PgRow) -> Result<Agent, sqlx::Error> {
    let minutes = |col: &str| -> Result<WorkTime, sqlx::Error> {
        let m: i32 = r.try_get(col)?;
        WorkTime::from_minutes(m)
            .ok_or_else(|| sqlx::Error::Decode(format!("{col} = {m} minutes").into()))
    };
    Ok(Agent {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        endpoint: r.try_get("endpoint")?,
        status: stored_status(r.try_get("status")?)?,
        status_changed_at: r.try_get("status_changed_at")?,
        idle_since: r.try_get("idle_since")?,
        max_concurrent_calls: r.try_get("max_concurrent_calls")?,
        active_calls: r.try_get("active_calls")?,
        time_zone: r.try_get("time_zone")?,
        work_start: minutes("work_start_min")?,
        work_end: minutes("work_end_min")?,
        work_days: WeekDays(r.try_get::<i16, _>("work_days")? as u8),
        missed_offers: r.try_get("missed_offers")?,
        groups: r.try_get("groups")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Parses ids given in a body or on the command line, naming the field.
pub fn parse_ids<T: std::str::FromStr<Err = String>>(
    field: &'static str,
    raw: &[String],
) -> Result<Vec<T>, SettingError> {
    raw.iter()
        .map(|r| {
            r.parse().map_err(|reason| SettingError {
                field,
                value: r.clone(),
                reason,
            })
        })
        .collect()
}

/// Creates an agent (and their group memberships) from checked settings.
pub async fn insert(
    conn: &mut PgConnection,
    tenant: TenantId,
    input: &AgentInput,
) -> Result<Agent, AgentError> {
    let settings = AgentSettings::new(input)?;
    let status = match &input.status {
        Some(s) => AgentStatus::parse(s)?,
        None => AgentStatus::Offline,
    };
    if !status.is_chosen_by_people() {
        return Err(AgentError::SetByCallFlow(status));
    }
    let groups: Vec<GroupId> = parse_ids("groups", input.groups.as_deref().unwrap_or(&[]))?;
    let mut tx = conn.begin().await?;
    let id = AgentId(Uuid::now_v7());
    sqlx::query(
        "INSERT INTO agents (id, tenant_id, name, endpoint, status, idle_since, max_concurrent_calls,
                             time_zone, work_start, work_end, work_days)
         VALUES ($1, $2, $3, $4, $5, CASE WHEN $5 = 'available' THEN now() END, $6, $7, $8::time, $9::time, $10)",
    )
    .bind(id)
    .bind(tenant)
    .bind(&settings.name)
    .bind(settings.endpoint.as_str())
    .bind(status.as_str())
    .bind(settings.max_concurrent_calls)
    .bind(settings.time_zone.name())
    .bind(settings.work_start.to_string())
    .bind(settings.work_end.to_string())
    .bind(settings.work_days.0 as i16)
    .execute(&mut *tx)
    .await?;
    set_groups(&mut tx, tenant, id, &groups).await?;
    let agent = get(&mut tx, tenant, id)
        .await?
        .ok_or(AgentError::NotFound(id))?;
    tx.commit().await?;
    Ok(agent)
}

/// Makes the agent's groups exactly `groups`; a group of another tenant is refused as
/// unknown.
async fn set_groups(
    conn: &mut PgConnection,
    tenant: TenantId,
    agent: AgentId,
    groups: &[GroupId],
) -> Result<(), AgentError> {
    let ids: Vec<Uuid> = groups.iter().map(|g| g.0).collect();
    let known: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM agent_groups WHERE tenant_id = $1 AND id = ANY($2)")
            .bind(tenant)
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?;
    if let Some(missing) = ids.iter().find(|g| !known.contains(g)) {
        return Err(SettingError {
            field: "groups",
            value: missing.to_string(),
            reason: "no agent group with this id".into(),
        }
        .into());
    }
    sqlx::query(
        "WITH gone AS (DELETE FROM agent_group_members WHERE agent_id = $2 AND NOT (group_id = ANY($3)))
         INSERT INTO agent_group_members (tenant_id, group_id, agent_id)
         SELECT $1, g, $2 FROM unnest($3::uuid[]) AS g
         ON CONFLICT (group_id, agent_id) DO NOTHING",
    )
    .bind(tenant)
    .bind(agent)
    .bind(&ids)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Filters for [`list`].
#[derive(Debug, Clone, Default)]
pub struct AgentFilter {
    pub status: Option<AgentStatus>,
    pub group: Option<GroupId>,
}

/// The tenant's agents, by name. A group filter naming no group of the tenant is
/// `GroupNotFound`.
pub async fn list(
    conn: &mut PgConnection,
    tenant: TenantId,
    filter: &AgentFilter,
) -> Result<Vec<Agent>, AgentError> {
    if let Some(g) = filter.group {
        get_group(&mut *conn, tenant, g)
            .await?
            .ok_or(AgentError::GroupNotFound(g))?;
    }
    let rows = sqlx::query(concat!(
        "SELECT ",
        agent_columns!(),
        " FROM agents a WHERE a.tenant_id = $1 AND ($2::text IS NULL OR a.status = $2)
            AND ($3::uuid IS NULL OR EXISTS (
                 SELECT 1 FROM agent_group_members m WHERE m.agent_id = a.id AND m.group_id = $3))
          ORDER BY a.name, a.id"
    ))
    .bind(tenant)
    .bind(filter.status.map(|s| s.as_str()))
    .bind(filter.group)
    .fetch_all(conn)
    .await?;
    Ok(rows.iter().map(agent_from_row).collect::<Result<_, _>>()?)
}

/// One agent of the tenant.
pub async fn get(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: AgentId,
) -> Result<Option<Agent>, sqlx::Error> {
    sqlx::query(concat!(
        "SELECT ",
        agent_columns!(),
        " FROM agents a WHERE a.id = $1 AND a.tenant_id = $2"
    ))
    .bind(id)
    .bind(tenant)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(agent_from_row)
    .transpose()
}

/// Changes the fields `input` gives (and, with `groups`, the agent's groups). The status
/// is not changed here: [`set_status`] holds its rules.
pub async fn update(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: AgentId,
    input: &AgentInput,
) -> Result<Agent, AgentError> {
    if let Some(s) = &input.status {
        return Err(SettingError {
            field: "status",
            value: s.clone(),
            reason: "the status is changed with PUT /api/v1/agents/{id}/status".into(),
        }
        .into());
    }
    let groups: Option<Vec<GroupId>> = input
        .groups
        .as_deref()
        .map(|g| parse_ids("groups", g))
        .transpose()?;
    let mut tx = conn.begin().await?;
    // The row lock keeps two updates from checking hours against each other's old values.
    let locked: Option<Uuid> =
        sqlx::query_scalar("SELECT id FROM agents WHERE id = $1 AND tenant_id = $2 FOR UPDATE")
            .bind(id)
            .bind(tenant)
            .fetch_optional(&mut *tx)
            .await?;
    if locked.is_none() {
        return Err(AgentError::NotFound(id));
    }
    let current = get(&mut tx, tenant, id)
        .await?
        .ok_or(AgentError::NotFound(id))?;
    let s = current.settings()?.apply(input)?;
    sqlx::query(
        "UPDATE agents SET name = $2, endpoint = $3, max_concurrent_calls = $4, time_zone = $5,
                work_start = $6::time, work_end = $7::time, work_days = $8, updated_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(&s.name)
    .bind(s.endpoint.as_str())
    .bind(s.max_concurrent_calls)
    .bind(s.time_zone.name())
    .bind(s.work_start.to_string())
    .bind(s.work_end.to_string())
    .bind(s.work_days.0 as i16)
    .execute(&mut *tx)
    .await?;
    if let Some(groups) = groups {
        set_groups(&mut tx, tenant, id, &groups).await?;
    }
    let agent = get(&mut tx, tenant, id)
        .await?
        .ok_or(AgentError::NotFound(id))?;
    tx.commit().await?;
    Ok(agent)
}

/// How often a status change is re-decided when the call flow changed the agent between
/// the read and the write.
const STATUS_TRIES: usize = 5;

/// Sets a status a person chose, under the rules of [`check_status_change`]. The write is
/// one statement that compares the status and call count it decided on, so it never
/// undoes what the call flow (`engine::transfer`) did meanwhile: on a mismatch the
/// decision is made again on the new values. `status_changed_at` moves on every change;
/// going `available` starts the idle clock and forgets missed offers.
pub async fn set_status(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: AgentId,
    to: AgentStatus,
) -> Result<Agent, AgentError> {
    if !to.is_chosen_by_people() {
        return Err(AgentError::SetByCallFlow(to));
    }
    for _ in 0..STATUS_TRIES {
        let now = status_now(&mut *conn, tenant, id)
            .await?
            .ok_or(AgentError::NotFound(id))?;
        check_status_change(&now, to)?;
        let changed = sqlx::query(
            "UPDATE agents SET status = $3,
                    status_changed_at = CASE WHEN status <> $3 THEN now() ELSE status_changed_at END,
                    idle_since = CASE WHEN $3 <> 'available' THEN NULL
                                      WHEN status <> 'available' THEN now()
                                      ELSE idle_since END,
                    missed_offers = CASE WHEN $3 = 'available' THEN 0 ELSE missed_offers END,
                    updated_at = now()
              WHERE id = $1 AND tenant_id = $2 AND status = $4 AND active_calls = $5",
        )
        .bind(id)
        .bind(tenant)
        .bind(to.as_str())
        .bind(now.status.as_str())
        .bind(now.active_calls)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            > 0;
        if changed {
            return get(conn, tenant, id).await?.ok_or(AgentError::NotFound(id));
        }
    }
    Err(AgentError::StatusRaced)
}

async fn status_now(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: AgentId,
) -> Result<Option<StatusNow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT a.status, a.active_calls, a.max_concurrent_calls,
                (SELECT k.id FROM calls k
                  WHERE k.agent_id = a.id AND k.bridged_at IS NOT NULL AND k.agent_disposition IS NULL
                  ORDER BY k.bridged_at DESC LIMIT 1) AS owed
           FROM agents a WHERE a.id = $1 AND a.tenant_id = $2",
    )
    .bind(id)
    .bind(tenant)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(StatusNow {
            status: stored_status(r.try_get("status")?)?,
            active_calls: r.try_get("active_calls")?,
            max_concurrent_calls: r.try_get("max_concurrent_calls")?,
            owed_disposition: r.try_get("owed")?,
        })
    })
    .transpose()
}

/// A new API key with role `agent`, bound to this agent; the secret is in the answer only.
pub async fn create_key(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: AgentId,
    hasher: &KeyHasher,
) -> Result<CreatedKey, AgentError> {
    let mut tx = conn.begin().await?;
    let name: Option<String> =
        sqlx::query_scalar("SELECT name FROM agents WHERE id = $1 AND tenant_id = $2 FOR SHARE")
            .bind(id)
            .bind(tenant)
            .fetch_optional(&mut *tx)
            .await?;
    let name = name.ok_or(AgentError::NotFound(id))?;
    let key = crate::auth::repo::create_key(
        &mut tx,
        tenant,
        &format!("agent key for {name}"),
        Role::Agent,
        Some(id.0),
        hasher,
    )
    .await?;
    tx.commit().await?;
    Ok(key)
}

/// The columns of `AgentGroup` (from `agent_groups g`).
macro_rules! group_columns {
    () => {
        "g.id, g.name, g.created_at, \
         ARRAY(SELECT m.agent_id FROM agent_group_members m WHERE m.group_id = g.id ORDER BY m.agent_id) AS agents, \
         ARRAY(SELECT c.id FROM campaigns c WHERE c.agent_group_id = g.id ORDER BY c.created_at) AS campaigns"
    };
}

fn group_from_row(r: &PgRow) -> Result<AgentGroup, sqlx::Error> {
    Ok(AgentGroup {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        agents: r.try_get("agents")?,
        campaigns: r.try_get("campaigns")?,
        created_at: r.try_get("created_at")?,
    })
}

fn name_taken(name: &str) -> impl FnOnce(sqlx::Error) -> AgentError + '_ {
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            AgentError::GroupNameTaken(name.to_string())
        }
        _ => AgentError::Db(e),
    }
}

/// Creates a group (with its first members, if given).
pub async fn insert_group(
    conn: &mut PgConnection,
    tenant: TenantId,
    input: &GroupInput,
) -> Result<AgentGroup, AgentError> {
    let name = parse_group_name(input.name.as_deref().ok_or_else(|| SettingError {
        field: "name",
        value: String::new(),
        reason: "is required".into(),
    })?)?;
    let agents: Vec<AgentId> = parse_ids("agents", input.agents.as_deref().unwrap_or(&[]))?;
    let mut tx = conn.begin().await?;
    let id = GroupId(Uuid::now_v7());
    sqlx::query("INSERT INTO agent_groups (id, tenant_id, name) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(tenant)
        .bind(&name)
        .execute(&mut *tx)
        .await
        .map_err(name_taken(&name))?;
    set_members(&mut tx, tenant, id, &agents).await?;
    let group = get_group(&mut tx, tenant, id)
        .await?
        .ok_or(AgentError::GroupNotFound(id))?;
    tx.commit().await?;
    Ok(group)
}

/// Makes the group's members exactly `agents`; another tenant's agent is refused as
/// unknown.
async fn set_members(
    conn: &mut PgConnection,
    tenant: TenantId,
    group: GroupId,
    agents: &[AgentId],
) -> Result<(), AgentError> {
    let ids: Vec<Uuid> = agents.iter().map(|a| a.0).collect();
    let known: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM agents WHERE tenant_id = $1 AND id = ANY($2)")
            .bind(tenant)
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?;
    if let Some(missing) = ids.iter().find(|a| !known.contains(a)) {
        return Err(SettingError {
            field: "agents",
            value: missing.to_string(),
            reason: "no agent with this id".into(),
        }
        .into());
    }
    sqlx::query(
        "WITH gone AS (DELETE FROM agent_group_members WHERE group_id = $2 AND NOT (agent_id = ANY($3)))
         INSERT INTO agent_group_members (tenant_id, group_id, agent_id)
         SELECT $1, $2, a FROM unnest($3::uuid[]) AS a
         ON CONFLICT (group_id, agent_id) DO NOTHING",
    )
    .bind(tenant)
    .bind(group)
    .bind(&ids)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The tenant's groups, by name.
pub async fn list_groups(
    conn: &mut PgConnection,
    tenant: TenantId,
) -> Result<Vec<AgentGroup>, sqlx::Error> {
    sqlx::query(concat!(
        "SELECT ",
        group_columns!(),
        " FROM agent_groups g WHERE g.tenant_id = $1 ORDER BY g.name"
    ))
    .bind(tenant)
    .fetch_all(conn)
    .await?
    .iter()
    .map(group_from_row)
    .collect()
}

/// One group of the tenant.
pub async fn get_group(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: GroupId,
) -> Result<Option<AgentGroup>, sqlx::Error> {
    sqlx::query(concat!(
        "SELECT ",
        group_columns!(),
        " FROM agent_groups g WHERE g.id = $1 AND g.tenant_id = $2"
    ))
    .bind(id)
    .bind(tenant)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(group_from_row)
    .transpose()
}

/// A group named by its id or, for people at a terminal, its name.
pub async fn find_group(
    conn: &mut PgConnection,
    tenant: TenantId,
    id_or_name: &str,
) -> Result<AgentGroup, AgentError> {
    if let Ok(id) = id_or_name.parse::<GroupId>() {
        return get_group(conn, tenant, id)
            .await?
            .ok_or(AgentError::GroupNotFound(id));
    }
    let id: Option<GroupId> =
        sqlx::query_scalar("SELECT id FROM agent_groups WHERE tenant_id = $1 AND name = $2")
            .bind(tenant)
            .bind(id_or_name.trim())
            .fetch_optional(&mut *conn)
            .await?;
    match id {
        Some(id) => get_group(conn, tenant, id)
            .await?
            .ok_or(AgentError::GroupNotFound(id)),
        None => Err(SettingError {
            field: "group",
            value: id_or_name.to_string(),
            reason: "no agent group with this id or name".into(),
        }
        .into()),
    }
}

/// Renames a group and/or makes its members exactly `input.agents`.
pub async fn update_group(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: GroupId,
    input: &GroupInput,
) -> Result<AgentGroup, AgentError> {
    let name = input.name.as_deref().map(parse_group_name).transpose()?;
    let agents: Option<Vec<AgentId>> = input
        .agents
        .as_deref()
        .map(|a| parse_ids("agents", a))
        .transpose()?;
    let mut tx = conn.begin().await?;
    let found = sqlx::query(
        "UPDATE agent_groups SET name = COALESCE($3, name) WHERE id = $1 AND tenant_id = $2",
    )
    .bind(id)
    .bind(tenant)
    .bind(&name)
    .execute(&mut *tx)
    .await
    .map_err(name_taken(name.as_deref().unwrap_or_default()))?
    .rows_affected()
        > 0;
    if !found {
        return Err(AgentError::GroupNotFound(id));
    }
    if let Some(agents) = agents {
        set_members(&mut tx, tenant, id, &agents).await?;
    }
    let group = get_group(&mut tx, tenant, id)
        .await?
        .ok_or(AgentError::GroupNotFound(id))?;
    tx.commit().await?;
    Ok(group)
}

/// Deletes a group no campaign uses (its memberships go with it). The campaigns' foreign
/// key refuses the delete whatever the check before it saw, so a campaign given the group
/// meanwhile is still protected.
pub async fn delete_group(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: GroupId,
) -> Result<(), AgentError> {
    let group = get_group(&mut *conn, tenant, id)
        .await?
        .ok_or(AgentError::GroupNotFound(id))?;
    let in_use = |campaigns: &[Uuid]| AgentError::GroupInUse {
        campaigns: campaigns
            .iter()
            .map(Uuid::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    };
    if !group.campaigns.is_empty() {
        return Err(in_use(&group.campaigns));
    }
    let deleted = sqlx::query("DELETE FROM agent_groups WHERE id = $1 AND tenant_id = $2")
        .bind(id)
        .bind(tenant)
        .execute(&mut *conn)
        .await;
    match deleted {
        Ok(r) if r.rows_affected() > 0 => Ok(()),
        Ok(_) => Err(AgentError::GroupNotFound(id)),
        Err(sqlx::Error::Database(d)) if d.is_foreign_key_violation() => {
            let now = get_group(conn, tenant, id).await?;
            Err(in_use(&now.map(|g| g.campaigns).unwrap_or_default()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Puts an agent in a group (a no-op if they are in it); both must be the tenant's.
pub async fn add_member(
    conn: &mut PgConnection,
    tenant: TenantId,
    group: GroupId,
    agent: AgentId,
) -> Result<AgentGroup, AgentError> {
    check_pair(&mut *conn, tenant, group, agent).await?;
    sqlx::query(
        "INSERT INTO agent_group_members (tenant_id, group_id, agent_id) VALUES ($1, $2, $3)
         ON CONFLICT (group_id, agent_id) DO NOTHING",
    )
    .bind(tenant)
    .bind(group)
    .bind(agent)
    .execute(&mut *conn)
    .await?;
    get_group(conn, tenant, group)
        .await?
        .ok_or(AgentError::GroupNotFound(group))
}

/// Takes an agent out of a group.
pub async fn remove_member(
    conn: &mut PgConnection,
    tenant: TenantId,
    group: GroupId,
    agent: AgentId,
) -> Result<AgentGroup, AgentError> {
    check_pair(&mut *conn, tenant, group, agent).await?;
    let removed = sqlx::query(
        "DELETE FROM agent_group_members WHERE tenant_id = $1 AND group_id = $2 AND agent_id = $3",
    )
    .bind(tenant)
    .bind(group)
    .bind(agent)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0;
    if !removed {
        return Err(AgentError::NotMember { agent, group });
    }
    get_group(conn, tenant, group)
        .await?
        .ok_or(AgentError::GroupNotFound(group))
}

async fn check_pair(
    conn: &mut PgConnection,
    tenant: TenantId,
    group: GroupId,
    agent: AgentId,
) -> Result<(), AgentError> {
    let (g, a): (bool, bool) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM agent_groups WHERE id = $1 AND tenant_id = $3),
                EXISTS (SELECT 1 FROM agents WHERE id = $2 AND tenant_id = $3)",
    )
    .bind(group)
    .bind(agent)
    .bind(tenant)
    .fetch_one(conn)
    .await?;
    if !g {
        return Err(AgentError::GroupNotFound(group));
    }
    if !a {
        return Err(AgentError::NotFound(agent));
    }
    Ok(())
}
