# Thin wrappers over the npm scripts (package.json). Needs Node.js 24 on PATH.
.PHONY: install build lint test bench start

install: ## install from package-lock.json
	npm install --no-audit --no-fund

build: ## type check (Node runs the .ts sources directly; nothing is emitted)
	npx tsc --noEmit

lint: ## type check and ESLint
	npm run lint

test: ## lint, then the whole vitest suite (embedded PostgreSQL and chdb started by the suite)
	npm test

bench: ## every benchmark scenario with its baseline; writes docs/benchmarks.md
	npm run bench

start: ## run the collector on the default configuration (SQLite in ./data)
	npm start
