// The official JavaScript client (@clickhouse/client, Node.js) running queries against a
// ClickHouse HTTP endpoint. Input on stdin, JSON: {"url", "username", "password", "database",
// "compression": true|false, "queries": [{"id", "sql"}]}. Output on stdout, one JSON object a
// query: {"id", "meta", "rows", "error"}: the JSONCompactEachRowWithNamesAndTypes answer as the
// client parses it (names and types, then the rows).
import { createClient } from '@clickhouse/client'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const input = JSON.parse(Buffer.concat(chunks).toString('utf8'))

const client = createClient({
  url: input.url,
  username: input.username,
  password: input.password,
  database: input.database,
  compression: { request: !!input.compression, response: !!input.compression },
})

for (const q of input.queries) {
  const out = { id: q.id }
  try {
    const result = await client.query({ query: q.sql, format: 'JSONCompactEachRowWithNamesAndTypes' })
    const rows = await result.json()
    out.meta = rows.slice(0, 2)
    out.rows = rows.slice(2)
  } catch (err) {
    out.error = `${err.code ?? ''} ${err.type ?? ''} ${err.message}`
  }
  process.stdout.write(JSON.stringify(out) + '\n')
}
await client.close()
