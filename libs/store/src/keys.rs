//! Primary keys and unique indexes: reading them from the catalog, and
//! re-keying a table so that its primary key leads with `tenant_id`.
//!
//! A schema whose every primary key and unique index starts with the
//! tenant can be distributed by tenant (Citus) as it is: each key is then
//! enforced within one shard. See docs/scaling.md.

use std::ops::Range;

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

/// A primary key or a unique index, with its key columns in order (an
/// expression in the key reads `(expression)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub name: String,
    pub primary: bool,
    pub columns: Vec<String>,
}

/// What a table is to the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// An ordinary table.
    Table,
    /// A SQLite virtual table (FTS5) or one of the shadow tables it keeps
    /// its data in: the module, not the schema, decides their keys.
    Virtual,
}

/// One table of the connection's schema and its unique keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableKeys {
    pub table: String,
    pub kind: TableKind,
    pub keys: Vec<Key>,
}

impl TableKeys {
    /// The primary key, if the table has one.
    pub fn primary(&self) -> Option<&Key> {
        self.keys.iter().find(|k| k.primary)
    }
}

/// Every table of the connection's schema (PostgreSQL: the first schema of
/// the search path, the service's own; SQLite: the main database) with its
/// primary key and unique indexes, by table name.
pub async fn unique_keys(conn: &impl ConnectionTrait) -> Result<Vec<TableKeys>, DbErr> {
    match conn.get_database_backend() {
        DbBackend::Postgres => postgres_keys(conn, None).await,
        _ => sqlite_keys(conn).await,
    }
}

/// The columns of `table`'s primary key, in order; empty without one.
pub async fn primary_key(conn: &impl ConnectionTrait, table: &str) -> Result<Vec<String>, DbErr> {
    match conn.get_database_backend() {
        DbBackend::Postgres => Ok(postgres_keys(conn, Some(table))
            .await?
            .into_iter()
            .flat_map(|t| t.keys)
            .find(|k| k.primary)
            .map(|k| k.columns)
            .unwrap_or_default()),
        _ => sqlite_primary_key(conn, table).await,
    }
}

/// Makes `columns` (the tenant first) the primary key of `table`, keeping
/// its rows, its other indexes and everything else it has. Nothing is done
/// when that is already its key, so a migration may call this again.
///
/// On PostgreSQL the constraint is dropped and added in one `ALTER TABLE`
/// (the new key's index is built from the rows: a full read of the table,
/// under an exclusive lock until the transaction ends). SQLite cannot alter
/// a primary key: the table is rebuilt by its documented procedure (a new
/// table from the stored definition with only the key changed, the rows
/// copied, the old table dropped, the new one renamed, its indexes and
/// triggers made again), which rewrites the table once.
///
/// Run it in a transaction (a migrator's): a failure part way leaves the
/// table as it was.
pub async fn set_primary_key(
    conn: &impl ConnectionTrait,
    table: &str,
    columns: &[&str],
) -> Result<(), DbErr> {
    if columns.is_empty() {
        return Err(DbErr::Migration(format!(
            "{table}: a primary key needs columns"
        )));
    }
    let current = primary_key(conn, table).await?;
    if current
        .iter()
        .map(String::as_str)
        .eq(columns.iter().copied())
    {
        return Ok(());
    }
    let key = columns
        .iter()
        .map(|c| quote(c))
        .collect::<Result<Vec<_>, _>>()?
        .join(", ");
    match conn.get_database_backend() {
        DbBackend::Postgres => {
            let constraint = conn
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT conname::text AS name FROM pg_constraint \
                     WHERE conrelid = to_regclass(quote_ident($1)) AND contype = 'p'",
                    [table.into()],
                ))
                .await?
                .map(|row| row.try_get::<String>("", "name"))
                .transpose()?;
            let drop = match constraint {
                Some(name) => format!("DROP CONSTRAINT {}, ", quote(&name)?),
                None => String::new(),
            };
            conn.execute_unprepared(&format!(
                "ALTER TABLE {} {drop}ADD PRIMARY KEY ({key})",
                quote(table)?
            ))
            .await?;
            Ok(())
        }
        _ => rebuild_sqlite(conn, table, &key).await,
    }
}

async fn rebuild_sqlite(conn: &impl ConnectionTrait, table: &str, key: &str) -> Result<(), DbErr> {
    let sql = sqlite_strings(
        conn,
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
        table,
    )
    .await?
    .into_iter()
    .next()
    .ok_or_else(|| DbErr::Migration(format!("{table}: no such table")))?;
    let definition = with_primary_key(&sql, key)?;
    // The indexes and triggers go with the old table; their stored SQL
    // makes them again (the implicit index of a key or a UNIQUE has none).
    let dependents = sqlite_strings(
        conn,
        "SELECT sql FROM sqlite_master \
         WHERE tbl_name = ? AND type IN ('index', 'trigger') AND sql IS NOT NULL \
         ORDER BY type, name",
        table,
    )
    .await?;
    let old = quote(table)?;
    let new = quote(&format!("{table}__tenant_first"))?;
    conn.execute_unprepared(&format!("CREATE TABLE {new} {definition}"))
        .await?;
    // Same columns in the same order: the definition is the old one.
    conn.execute_unprepared(&format!("INSERT INTO {new} SELECT * FROM {old}"))
        .await?;
    conn.execute_unprepared(&format!("DROP TABLE {old}"))
        .await?;
    conn.execute_unprepared(&format!("ALTER TABLE {new} RENAME TO {old}"))
        .await?;
    for sql in dependents {
        conn.execute_unprepared(&sql).await?;
    }
    Ok(())
}

fn quote(name: &str) -> Result<String, DbErr> {
    if name.is_empty() || name.contains('"') || name.contains('\0') {
        return Err(DbErr::Migration(format!("unusable identifier {name:?}")));
    }
    Ok(format!("\"{name}\""))
}

async fn sqlite_strings(
    conn: &impl ConnectionTrait,
    sql: &str,
    arg: &str,
) -> Result<Vec<String>, DbErr> {
    conn.query_all_raw(Statement::from_sql_and_values(
        DbBackend::Sqlite,
        sql,
        [arg.into()],
    ))
    .await?
    .iter()
    .map(|row| row.try_get_by_index::<String>(0))
    .collect()
}

const EXPRESSION: &str = "(expression)";

async fn postgres_keys(
    conn: &impl ConnectionTrait,
    table: Option<&str>,
) -> Result<Vec<TableKeys>, DbErr> {
    // Key columns only (`indnkeyatts`: INCLUDE columns do not count), in
    // index order; attnum 0 is an expression.
    let sql = "SELECT t.relname::text AS tbl, i.relname::text AS idx, \
                      COALESCE(x.indisprimary, false) AS is_primary, \
                      COALESCE(string_agg(COALESCE(a.attname::text, $2), ',' ORDER BY k.n), '') AS cols \
               FROM pg_class t \
               JOIN pg_namespace s ON s.oid = t.relnamespace \
               LEFT JOIN pg_index x ON x.indrelid = t.oid AND x.indisunique \
               LEFT JOIN pg_class i ON i.oid = x.indexrelid \
               LEFT JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) \
                 ON k.n <= x.indnkeyatts \
               LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum AND k.attnum > 0 \
               WHERE s.nspname = current_schema() AND t.relkind IN ('r', 'p') \
                 AND ($1::text IS NULL OR t.relname = $1) \
               GROUP BY t.relname, i.relname, x.indisprimary \
               ORDER BY 1, 2";
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [table.map(str::to_owned).into(), EXPRESSION.into()],
        ))
        .await?;
    let mut tables: Vec<TableKeys> = Vec::new();
    for row in rows {
        let name: String = row.try_get("", "tbl")?;
        let index: Option<String> = row.try_get("", "idx")?;
        let primary: bool = row.try_get("", "is_primary")?;
        let cols: String = row.try_get("", "cols")?;
        if tables.last().is_none_or(|t| t.table != name) {
            tables.push(TableKeys {
                table: name,
                kind: TableKind::Table,
                keys: Vec::new(),
            });
        }
        if let (Some(index), Some(entry)) = (index, tables.last_mut()) {
            entry.keys.push(Key {
                name: index,
                primary,
                columns: cols.split(',').map(str::to_owned).collect(),
            });
        }
    }
    Ok(tables)
}

async fn sqlite_primary_key(
    conn: &impl ConnectionTrait,
    table: &str,
) -> Result<Vec<String>, DbErr> {
    sqlite_strings(
        conn,
        "SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk",
        table,
    )
    .await
}

async fn sqlite_keys(conn: &impl ConnectionTrait) -> Result<Vec<TableKeys>, DbErr> {
    let rows = conn
        .query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT name, type FROM pragma_table_list \
             WHERE schema = 'main' AND type IN ('table', 'virtual', 'shadow') \
               AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
             ORDER BY name",
        ))
        .await?;
    let mut tables = Vec::new();
    for row in rows {
        let table: String = row.try_get_by_index(0)?;
        let kind: String = row.try_get_by_index(1)?;
        let mut keys = Vec::new();
        let pk = sqlite_primary_key(conn, &table).await?;
        if !pk.is_empty() {
            keys.push(Key {
                name: format!("{table} primary key"),
                primary: true,
                columns: pk,
            });
        }
        // Origin `pk` is the primary key's own index, read above.
        let indexes = sqlite_strings(
            conn,
            "SELECT name FROM pragma_index_list(?) WHERE \"unique\" = 1 AND origin <> 'pk' \
             ORDER BY name",
            &table,
        )
        .await?;
        for index in indexes {
            let columns = conn
                .query_all_raw(Statement::from_sql_and_values(
                    DbBackend::Sqlite,
                    "SELECT name FROM pragma_index_info(?) ORDER BY seqno",
                    [index.as_str().into()],
                ))
                .await?
                .iter()
                .map(|row| {
                    row.try_get_by_index::<Option<String>>(0)
                        .map(|c| c.unwrap_or_else(|| EXPRESSION.to_owned()))
                })
                .collect::<Result<_, _>>()?;
            keys.push(Key {
                name: index,
                primary: false,
                columns,
            });
        }
        tables.push(TableKeys {
            table,
            kind: if kind == "table" {
                TableKind::Table
            } else {
                TableKind::Virtual
            },
            keys,
        });
    }
    Ok(tables)
}

/// The column list and options of the stored `CREATE TABLE` statement
/// `sql` (from its first parenthesis on), with its primary key replaced by
/// `PRIMARY KEY (<key>)`: a column's own `PRIMARY KEY` or a table
/// constraint. Whatever else it says is kept as written. A key this cannot
/// move without changing what the table is (an `INTEGER PRIMARY KEY`
/// with `AUTOINCREMENT`, an order, a conflict clause, a named column
/// constraint) is refused.
fn with_primary_key(sql: &str, key: &str) -> Result<String, DbErr> {
    let unsupported = |what: &str| DbErr::Migration(format!("cannot re-key {what}: {sql}"));
    let tokens = tokenize(sql).map_err(|e| unsupported(&e))?;
    let open = tokens
        .iter()
        .position(|t| t.kind == Kind::Open)
        .ok_or_else(|| unsupported("a table without a column list"))?;
    // The items of the column list: split at its top-level commas.
    let mut items: Vec<Vec<&Token>> = vec![Vec::new()];
    let mut depth = 0usize;
    let mut close = None;
    for (i, token) in tokens.iter().enumerate().skip(open + 1) {
        match token.kind {
            Kind::Open => depth += 1,
            Kind::Close if depth == 0 => {
                close = Some(i);
                break;
            }
            Kind::Close => depth -= 1,
            Kind::Comma if depth == 0 => {
                items.push(Vec::new());
                continue;
            }
            _ => {}
        }
        if let Some(item) = items.last_mut() {
            item.push(token);
        }
    }
    let close = close.ok_or_else(|| unsupported("an unbalanced column list"))?;
    let mut kept = Vec::new();
    for item in items {
        let words: Vec<&Token> = item
            .iter()
            .copied()
            .filter(|t| t.kind != Kind::Space)
            .collect();
        let is = |t: Option<&&Token>, word: &str| {
            t.is_some_and(|t| t.kind == Kind::Word && t.text(sql).eq_ignore_ascii_case(word))
        };
        let Some(first) = words.first() else {
            return Err(unsupported("an empty column list item"));
        };
        // A table constraint `[CONSTRAINT name] PRIMARY KEY (...)`: dropped.
        if is(Some(first), "PRIMARY")
            || (is(Some(first), "CONSTRAINT") && is(words.get(2), "PRIMARY"))
        {
            continue;
        }
        let primary =
            (0..words.len()).find(|&i| is(words.get(i), "PRIMARY") && is(words.get(i + 1), "KEY"));
        let mut removed = 0..0;
        if let Some(i) = primary {
            // A column's own `PRIMARY KEY`: the two words go.
            let after = words.get(i + 2);
            for word in ["ASC", "DESC", "AUTOINCREMENT", "ON"] {
                if is(after, word) {
                    return Err(unsupported(&format!("a primary key with {word}")));
                }
            }
            if i >= 2 && is(words.get(i - 2), "CONSTRAINT") {
                return Err(unsupported("a named column primary key"));
            }
            removed = words[i].span.start..words[i + 1].span.end;
        }
        kept.push(text_of(sql, &item, &removed));
    }
    kept.push(format!("PRIMARY KEY ({key})"));
    let options = tokens.get(close).map_or("", |t| &sql[t.span.end..]).trim();
    let options = if options.is_empty() {
        String::new()
    } else {
        format!(" {options}")
    };
    Ok(format!("({}){options}", kept.join(", ")))
}

/// The item's text without `removed`, each run of space or comments one
/// space (a `--` comment would otherwise swallow what follows it on the
/// line the items are joined on).
fn text_of(sql: &str, item: &[&Token], removed: &Range<usize>) -> String {
    let mut text = String::new();
    for token in item {
        if removed.start <= token.span.start && token.span.end <= removed.end && !removed.is_empty()
        {
            continue;
        }
        if token.kind == Kind::Space {
            if !text.is_empty() && !text.ends_with(' ') {
                text.push(' ');
            }
        } else {
            text.push_str(token.text(sql));
        }
    }
    text.trim_end().to_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Word,
    Quoted,
    Open,
    Close,
    Comma,
    Space,
    Other,
}

#[derive(Debug)]
struct Token {
    kind: Kind,
    span: Range<usize>,
}

impl Token {
    fn text<'a>(&self, sql: &'a str) -> &'a str {
        &sql[self.span.clone()]
    }
}

/// SQLite's lexical structure, as far as finding words outside quotes,
/// parentheses and commas needs: quoted names and strings (`"`, `'`, `` ` ``,
/// `[...]`, doubled quotes inside), comments count as space.
fn tokenize(sql: &str) -> Result<Vec<Token>, String> {
    let bytes = sql.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let kind = match bytes[i] {
            b'(' => {
                i += 1;
                Kind::Open
            }
            b')' => {
                i += 1;
                Kind::Close
            }
            b',' => {
                i += 1;
                Kind::Comma
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                Kind::Space
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = sql[i + 2..].find("*/").ok_or("an unterminated comment")?;
                i += 2 + end + 2;
                Kind::Space
            }
            quote @ (b'"' | b'\'' | b'`' | b'[') => {
                let close = if quote == b'[' { b']' } else { quote };
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return Err("an unterminated quote".into()),
                        Some(&b) if b == close => {
                            // A doubled quote is one quote character.
                            if close != b']' && bytes.get(i + 1) == Some(&close) {
                                i += 2;
                            } else {
                                i += 1;
                                break;
                            }
                        }
                        Some(_) => i += 1,
                    }
                }
                Kind::Quoted
            }
            b if b.is_ascii_whitespace() => {
                while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                Kind::Space
            }
            b if b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80 => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || bytes[i] == b'_'
                        || bytes[i] == b'$'
                        || bytes[i] >= 0x80)
                {
                    i += 1;
                }
                Kind::Word
            }
            _ => {
                i += 1;
                Kind::Other
            }
        };
        tokens.push(Token {
            kind,
            span: start..i,
        });
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_column_primary_key_moves_to_the_table() {
        let sql = r#"CREATE TABLE IF NOT EXISTS "leads" ( "id" varchar NOT NULL PRIMARY KEY, "tenant_id" varchar NOT NULL, "notes" text NOT NULL )"#;
        assert_eq!(
            with_primary_key(sql, r#""tenant_id", "id""#).unwrap(),
            r#"("id" varchar NOT NULL, "tenant_id" varchar NOT NULL, "notes" text NOT NULL, PRIMARY KEY ("tenant_id", "id"))"#
        );
    }

    #[test]
    fn a_table_primary_key_is_replaced_and_the_options_kept() {
        let sql = r#"CREATE TABLE "event_cursors" ( "consumer" varchar NOT NULL, "tenant_id" varchar NOT NULL, CONSTRAINT "pk" PRIMARY KEY ("consumer", "tenant_id") ) WITHOUT ROWID"#;
        assert_eq!(
            with_primary_key(sql, r#""tenant_id", "consumer""#).unwrap(),
            r#"("consumer" varchar NOT NULL, "tenant_id" varchar NOT NULL, PRIMARY KEY ("tenant_id", "consumer")) WITHOUT ROWID"#
        );
        let sql = "CREATE TABLE t (a TEXT, b TEXT, PRIMARY KEY (a, b))";
        assert_eq!(
            with_primary_key(sql, r#""b", "a""#).unwrap(),
            r#"(a TEXT, b TEXT, PRIMARY KEY ("b", "a"))"#
        );
    }

    /// Words inside quotes, strings, comments and nested parentheses are
    /// not keywords; everything but the key is kept as written.
    #[test]
    fn only_the_key_changes() {
        let sql = "CREATE TABLE [t] (\n  \"primary key\" TEXT DEFAULT 'PRIMARY KEY, x' -- PRIMARY KEY\n, id TEXT PRIMARY KEY CHECK (length(id) > 0), n DECIMAL(10, 2), /* , */ tenant_id TEXT NOT NULL)";
        assert_eq!(
            with_primary_key(sql, r#""tenant_id", "id""#).unwrap(),
            "(\"primary key\" TEXT DEFAULT 'PRIMARY KEY, x', id TEXT CHECK (length(id) > 0), n DECIMAL(10, 2), tenant_id TEXT NOT NULL, PRIMARY KEY (\"tenant_id\", \"id\"))"
        );
    }

    #[test]
    fn keys_that_mean_more_than_a_key_are_refused() {
        for sql in [
            "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT)",
            "CREATE TABLE t (id INTEGER PRIMARY KEY DESC, tenant_id TEXT)",
            "CREATE TABLE t (id TEXT PRIMARY KEY ON CONFLICT REPLACE, tenant_id TEXT)",
            "CREATE TABLE t (id TEXT CONSTRAINT k PRIMARY KEY, tenant_id TEXT)",
            "CREATE TABLE t (id TEXT PRIMARY KEY, tenant_id TEXT 'unterminated)",
        ] {
            assert!(
                matches!(
                    with_primary_key(sql, "\"tenant_id\""),
                    Err(DbErr::Migration(_))
                ),
                "{sql}"
            );
        }
    }

    mod on_a_database {
        use sea_orm::{DatabaseConnection, TransactionTrait};
        use sea_orm_migration::{prelude::*, schema::*};

        use super::*;
        use crate::{Location, connect, index};

        /// A database of each backend: a SQLite file, and a schema of its
        /// own on the server of `CRM_TEST_DATABASE_URL` when set (dropped
        /// on drop).
        struct Backend {
            db: DatabaseConnection,
            _dir: tempfile::TempDir,
            schema: Option<(String, String)>,
        }

        impl Drop for Backend {
            fn drop(&mut self) {
                let Some((url, schema)) = self.schema.take() else {
                    return;
                };
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        let db = connect(&Location { url, schema: None }, 1).await.unwrap();
                        db.execute_unprepared(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                            .await
                            .unwrap();
                    });
                })
                .join();
            }
        }

        async fn backends() -> Vec<Backend> {
            let dir = tempfile::tempdir().unwrap();
            let sqlite = connect(&Location::for_service("keys", None, dir.path()), 1)
                .await
                .unwrap();
            let mut all = vec![Backend {
                db: sqlite,
                _dir: dir,
                schema: None,
            }];
            if let Some(url) = std::env::var("CRM_TEST_DATABASE_URL")
                .ok()
                .filter(|u| !u.is_empty())
            {
                let schema = format!("keys_{}", crate::new_id().replace('-', ""));
                let location = Location {
                    url: url.clone(),
                    schema: Some(schema.clone()),
                };
                all.push(Backend {
                    db: connect(&location, 1).await.unwrap(),
                    _dir: tempfile::tempdir().unwrap(),
                    schema: Some((url, schema)),
                });
            }
            all
        }

        type Row = (String, String, Option<String>, i32);

        async fn rows(db: &DatabaseConnection) -> Vec<Row> {
            db.query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT id, tenant_id, k, n FROM things ORDER BY id, tenant_id",
            ))
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.try_get_by_index(0).unwrap(),
                    r.try_get_by_index(1).unwrap(),
                    r.try_get_by_index(2).unwrap(),
                    r.try_get_by_index(3).unwrap(),
                )
            })
            .collect()
        }

        async fn insert(
            db: &DatabaseConnection,
            id: &str,
            tenant: &str,
            k: &str,
        ) -> Result<(), DbErr> {
            db.execute_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                match db.get_database_backend() {
                    DbBackend::Postgres => {
                        "INSERT INTO things (id, tenant_id, k, n) VALUES ($1, $2, $3, 7)"
                    }
                    _ => "INSERT INTO things (id, tenant_id, k, n) VALUES (?, ?, ?, 7)",
                },
                [id.into(), tenant.into(), k.into()],
            ))
            .await
            .map(|_| ())
        }

        async fn index_exists(db: &DatabaseConnection, name: &str) -> bool {
            let sql = match db.get_database_backend() {
                DbBackend::Postgres => format!(
                    "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = '{name}'"
                ),
                _ => format!(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = '{name}'"
                ),
            };
            let n: i64 = db
                .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
                .await
                .unwrap()
                .unwrap()
                .try_get_by_index(0)
                .unwrap();
            n == 1
        }

        /// A table keyed by `id` alone, as the first migrations made them,
        /// is re-keyed by (tenant, id) in a transaction: its rows, its
        /// unique and plain indexes stay, the unique index still refuses a
        /// duplicate, the same id may now exist in another tenant but not
        /// twice in one, and doing it again changes nothing.
        #[tokio::test]
        async fn a_table_is_re_keyed_with_its_rows_and_indexes() {
            for Backend { db, .. } in &backends().await {
                let backend = db.get_database_backend();
                db.execute(
                    &Table::create()
                        .table("things")
                        .col(string("id").primary_key())
                        .col(string("tenant_id"))
                        .col(string_null("k"))
                        .col(integer("n"))
                        .to_owned(),
                )
                .await
                .unwrap();
                db.execute(
                    &index("things_k", "things", &["tenant_id", "k"])
                        .unique()
                        .to_owned(),
                )
                .await
                .unwrap();
                db.execute(&index("things_n", "things", &["n"]))
                    .await
                    .unwrap();
                for (id, tenant, k) in [("a", "t1", "x"), ("b", "t1", "y"), ("c", "t2", "x")] {
                    insert(db, id, tenant, k).await.unwrap();
                }
                let before = rows(db).await;
                assert_eq!(
                    primary_key(db, "things").await.unwrap(),
                    ["id"],
                    "{backend:?}"
                );

                let tx = db.begin().await.unwrap();
                set_primary_key(&tx, "things", &["tenant_id", "id"])
                    .await
                    .unwrap();
                tx.commit().await.unwrap();

                assert_eq!(
                    primary_key(db, "things").await.unwrap(),
                    ["tenant_id", "id"],
                    "{backend:?}"
                );
                assert_eq!(rows(db).await, before, "{backend:?}");
                let keys = unique_keys(db).await.unwrap();
                let things = keys.iter().find(|t| t.table == "things").unwrap();
                assert!(
                    things.keys.iter().any(|k| !k.primary
                        && k.name == "things_k"
                        && k.columns == ["tenant_id", "k"]),
                    "{backend:?}: {things:?}"
                );
                assert!(index_exists(db, "things_n").await, "{backend:?}");
                assert!(
                    insert(db, "d", "t1", "x").await.is_err(),
                    "{backend:?}: unique (tenant, k)"
                );
                assert!(
                    insert(db, "a", "t1", "z").await.is_err(),
                    "{backend:?}: key (tenant, id)"
                );
                insert(db, "a", "t2", "z").await.unwrap();

                let tx = db.begin().await.unwrap();
                set_primary_key(&tx, "things", &["tenant_id", "id"])
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                assert_eq!(rows(db).await.len(), 4, "{backend:?}");
            }
        }

        /// A failure part way (here: the new key's columns are not unique)
        /// leaves the table as it was once the transaction is rolled back.
        #[tokio::test]
        async fn a_failed_re_key_leaves_the_table_as_it_was() {
            for Backend { db, .. } in &backends().await {
                let backend = db.get_database_backend();
                db.execute(
                    &Table::create()
                        .table("things")
                        .col(string("id").primary_key())
                        .col(string("tenant_id"))
                        .col(string_null("k"))
                        .col(integer("n"))
                        .to_owned(),
                )
                .await
                .unwrap();
                insert(db, "a", "t1", "x").await.unwrap();
                insert(db, "b", "t1", "x").await.unwrap();
                let tx = db.begin().await.unwrap();
                assert!(
                    set_primary_key(&tx, "things", &["tenant_id", "k"])
                        .await
                        .is_err()
                );
                tx.rollback().await.unwrap();
                assert_eq!(
                    primary_key(db, "things").await.unwrap(),
                    ["id"],
                    "{backend:?}"
                );
                assert_eq!(rows(db).await.len(), 2, "{backend:?}");
            }
        }
    }
}
