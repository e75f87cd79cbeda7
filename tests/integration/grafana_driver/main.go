// The ClickHouse client of Grafana's ClickHouse plugin (clickhouse-go v2 over HTTP, opened as the
// plugin opens it: database/sql, protocol HTTP, a compression method, max_execution_time) running
// queries against a ClickHouse HTTP endpoint.
//
// Input on stdin, JSON: {"addr": "127.0.0.1:8123", "user": "...", "password": "...",
// "database": "...", "compression": "none|lz4|zstd|gzip|deflate|br", "queries": [{"id": "...", "sql": "..."}]}.
// Output on stdout, one JSON object a query: {"id", "columns", "types", "rows", "error"}; values
// are JSON with times as {"t": unix microseconds}, floats that JSON cannot hold as "nan", "inf",
// "-inf", decimals as numbers, everything else as its natural JSON value or its text.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"net"
	"os"
	"reflect"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"
	"github.com/shopspring/decimal"
)

type query struct {
	ID  string `json:"id"`
	SQL string `json:"sql"`
}

// insert: a batch of rows (id UInt64, s String, t DateTime64(3, 'UTC')) written as the driver
// writes batches over HTTP: INSERT ... FORMAT Native, the blocks in ClickHouse's compressed format
// with LZ4 or ZSTD (decompress=1).
type insert struct {
	Table string `json:"table"`
	Rows  int    `json:"rows"`
}

type input struct {
	Insert      *insert `json:"insert"`
	Addr        string  `json:"addr"`
	User        string  `json:"user"`
	Password    string  `json:"password"`
	Database    string  `json:"database"`
	Compression string  `json:"compression"`
	Queries     []query `json:"queries"`
}

type result struct {
	ID      string   `json:"id"`
	Columns []string `json:"columns"`
	Types   []string `json:"types"`
	Rows    [][]any  `json:"rows"`
	Error   string   `json:"error,omitempty"`
}

func method(name string) clickhouse.CompressionMethod {
	switch name {
	case "lz4":
		return clickhouse.CompressionLZ4
	case "zstd":
		return clickhouse.CompressionZSTD
	case "gzip":
		return clickhouse.CompressionGZIP
	case "deflate":
		return clickhouse.CompressionDeflate
	case "br":
		return clickhouse.CompressionBrotli
	}
	return clickhouse.CompressionNone
}

func normalize(v reflect.Value) any {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	switch x := v.Interface().(type) {
	case time.Time:
		return map[string]int64{"t": x.UnixMicro()}
	case decimal.Decimal:
		f, _ := x.Float64()
		return f
	case big.Int:
		return x.String()
	case uuid.UUID:
		return x.String()
	case net.IP:
		return x.String()
	}
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		switch {
		case math.IsNaN(f):
			return "nan"
		case math.IsInf(f, 1):
			return "inf"
		case math.IsInf(f, -1):
			return "-inf"
		}
		return f
	case reflect.Slice, reflect.Array:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = normalize(v.Index(i))
		}
		return out
	case reflect.Map:
		out := map[string]any{}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, k := range keys {
			out[fmt.Sprint(normalize(k))] = normalize(v.MapIndex(k))
		}
		return out
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint()
	}
	return fmt.Sprint(v.Interface())
}

func run(ctx context.Context, db *sql.DB, q query) result {
	out := result{ID: q.ID, Columns: []string{}, Types: []string{}, Rows: [][]any{}}
	rows, err := db.QueryContext(ctx, q.SQL)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		out.Error = err.Error()
		return out
	}
	for _, t := range types {
		out.Columns = append(out.Columns, t.Name())
		out.Types = append(out.Types, t.DatabaseTypeName())
	}
	for rows.Next() {
		targets := make([]any, len(types))
		for i, t := range types {
			targets[i] = reflect.New(t.ScanType()).Interface()
		}
		if err := rows.Scan(targets...); err != nil {
			out.Error = err.Error()
			return out
		}
		row := make([]any, len(types))
		for i := range targets {
			row[i] = normalize(reflect.ValueOf(targets[i]))
		}
		out.Rows = append(out.Rows, row)
	}
	if err := rows.Err(); err != nil {
		out.Error = err.Error()
	}
	return out
}

func runInsert(ctx context.Context, db *sql.DB, ins *insert) result {
	out := result{ID: "insert"}
	tx, err := db.BeginTx(ctx, nil)
	if err == nil {
		var stmt *sql.Stmt
		if stmt, err = tx.PrepareContext(ctx, "INSERT INTO "+ins.Table); err == nil {
			for i := 0; i < ins.Rows && err == nil; i++ {
				_, err = stmt.ExecContext(ctx, uint64(i), fmt.Sprintf("row-%d", i), time.UnixMilli(int64(i)).UTC())
			}
			if err == nil {
				err = tx.Commit()
			}
		}
	}
	if err != nil {
		out.Error = err.Error()
	}
	return out
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, "input:", err)
		os.Exit(2)
	}
	// As the plugin opens its connection (pkg/plugin/driver.go): HTTP, the datasource's
	// compression, max_execution_time as a setting of every query.
	db := clickhouse.OpenDB(&clickhouse.Options{
		Addr:        []string{in.Addr},
		Protocol:    clickhouse.HTTP,
		Auth:        clickhouse.Auth{Username: in.User, Password: in.Password, Database: in.Database},
		Compression: &clickhouse.Compression{Method: method(in.Compression)},
		Settings:    clickhouse.Settings{"max_execution_time": 60},
		DialTimeout: 10 * time.Second,
		ReadTimeout: 60 * time.Second,
	})
	defer db.Close()
	ctx := context.Background()
	enc := json.NewEncoder(os.Stdout)
	if err := db.PingContext(ctx); err != nil {
		_ = enc.Encode(result{ID: "ping", Error: err.Error()})
		os.Exit(1)
	}
	if in.Insert != nil {
		_ = enc.Encode(runInsert(ctx, db, in.Insert))
	}
	for _, q := range in.Queries {
		_ = enc.Encode(run(ctx, db, q))
	}
}
