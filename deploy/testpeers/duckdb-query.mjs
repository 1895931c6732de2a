// Runs one SQL query with DuckDB (an independent Parquet reader) and prints
// the rows as JSON, one array per row: node duckdb-query.mjs "SELECT ...".
import { DuckDBInstance } from '@duckdb/node-api';

const sql = process.argv[2];
if (!sql) {
  console.error('usage: node duckdb-query.mjs "SQL"');
  process.exit(2);
}
const instance = await DuckDBInstance.create(':memory:');
const conn = await instance.connect();
const reader = await conn.runAndReadAll(sql);
const types = reader.columnTypes().map((t) => t.toString());
const names = reader.columnNames();
const rows = reader.getRowsJson();
process.stdout.write(JSON.stringify({ names, types, rows }) + '\n');
