# 民主测评系统 — two commands set everything up on a fresh machine: `make run`, `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export FLASK_APP := wsgi
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run serve test test-fast lint format bench loadtest fonts browser pdftools office nginx clean help schema

help:
	@echo "make run       安装依赖、迁移数据库、载入示例测评，并在 http://$(HOST):$(PORT) 启动"
	@echo "make test      安装依赖并运行全部测试（设置 TEST_DATABASE_URL 时同时测试 PostgreSQL）"
	@echo "make serve     以生产配置运行 gunicorn（需设置 SECRET_KEY）"
	@echo "make bench     运行全部性能基准，打印一张表（PostgreSQL 列需要 BENCH_DATABASE_URL）"
	@echo "make loadtest  500 位测评人同时投票的压力测试（SQLite；设置 BENCH_DATABASE_URL 时加测 PostgreSQL）"
	@echo "make lint      ruff 与 mypy 检查"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# A CJK font for charts and PDF slips: Debian's fonts-wqy-microhei (5 MiB).
fonts:
	@if ! fc-list 2>/dev/null | grep -qi -e 'wqy' -e 'Noto Sans CJK' -e 'Source Han'; then \
	  echo "未找到中文字体，正在安装 fonts-wqy-microhei …"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  ( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq fonts-wqy-microhei fontconfig ) >/dev/null \
	  || { echo "错误：无法安装中文字体。请手动运行：sudo apt-get install fonts-wqy-microhei"; exit 1; }; \
	fi

# Debian's Chromium for the browser tests (Playwright cannot download its own here).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "未找到 /usr/bin/chromium，正在安装 …"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  ( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium ) >/dev/null \
	  || { echo "错误：无法安装 Chromium。请手动运行：sudo apt-get install chromium"; exit 1; }; \
	fi

# nginx for the reverse-proxy test (README's example in front of two app servers). Installing
# the package would also start a system nginx on port 80; a policy-rc.d keeps it stopped.
nginx:
	@if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then \
	  echo "未找到 nginx，正在安装（反向代理测试用）…"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  NOSTART=; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' | $$SUDO tee /usr/sbin/policy-rc.d >/dev/null && $$SUDO chmod +x /usr/sbin/policy-rc.d && NOSTART=1; \
	  fi; \
	  ( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nginx ) >/dev/null; STATUS=$$?; \
	  if [ -n "$$NOSTART" ]; then $$SUDO rm -f /usr/sbin/policy-rc.d; fi; \
	  [ $$STATUS = 0 ] || { echo "错误：无法安装 nginx。请手动运行：sudo apt-get install nginx"; exit 1; }; \
	fi

# poppler-utils (pdftotext, pdftoppm) and zbar-tools (zbarimg) let the tests read the printed
# slips back: their text, and their QR codes scanned by a real decoder.
pdftools:
	@if ! command -v pdftoppm >/dev/null || ! command -v zbarimg >/dev/null; then \
	  echo "正在安装 poppler-utils 和 zbar-tools（测试用于读取 PDF 和识别二维码）…"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  ( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq poppler-utils zbar-tools ) >/dev/null \
	  || { echo "错误：无法安装。请手动运行：sudo apt-get install poppler-utils zbar-tools"; exit 1; }; \
	fi

# LibreOffice Calc (no GUI) renders the workbooks to PDF in the tests, as an official would
# print them: page count, fit to width, no cut text.
office:
	@if ! command -v soffice >/dev/null; then \
	  echo "正在安装 libreoffice-calc-nogui（测试用于把工作簿按打印效果转为 PDF）…"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  ( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends libreoffice-calc-nogui ) >/dev/null \
	  || { echo "错误：无法安装。请手动运行：sudo apt-get install libreoffice-calc-nogui"; exit 1; }; \
	fi

# Voting links and QR codes point at the address being served unless PUBLIC_BASE_URL says otherwise.
run: export PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)
run: $(STAMP) fonts
	$(BIN)/flask db upgrade
	$(BIN)/flask setup --host $(HOST) --port $(PORT)
	$(BIN)/gunicorn --config gunicorn.conf.py --bind $(HOST):$(PORT) --workers 2 wsgi:app

# Production: EVALUATION_ENV=production makes SECRET_KEY mandatory (checked here first for a
# clear message). DATABASE_URL, RATELIMIT_STORAGE_URI, BIND, WEB_CONCURRENCY, TRUSTED_PROXIES
# come from the environment (README: 生产部署).
serve: $(STAMP) fonts
	@test -n "$$SECRET_KEY" || { echo "错误：make serve 以生产配置运行，必须设置 SECRET_KEY（例如 export SECRET_KEY=\$$(openssl rand -hex 32)）"; exit 1; }
	EVALUATION_ENV=production $(BIN)/flask db upgrade
	EVALUATION_ENV=production $(BIN)/gunicorn --config gunicorn.conf.py wsgi:app

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy evaluation benchmarks config.py wsgi.py

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: $(STAMP) fonts browser pdftools office nginx lint
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
	  echo "== 测试将在 SQLite 和 PostgreSQL（$$TEST_DATABASE_URL）上各运行一遍"; \
	else \
	  echo "== 未设置 TEST_DATABASE_URL：只在 SQLite 上运行，PostgreSQL 部分全部跳过"; \
	  echo "   （例如 export TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test）"; \
	fi
	$(BIN)/pytest -p no:cacheprovider -n 2 $(PYTEST_ARGS)
	@if [ -z "$$TEST_DATABASE_URL" ]; then echo "== 注意：PostgreSQL 测试已跳过（未设置 TEST_DATABASE_URL）"; fi

test-fast: $(STAMP)
	$(BIN)/pytest -p no:cacheprovider -m "not browser and not slow" $(PYTEST_ARGS)

bench: $(STAMP) fonts
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

loadtest: $(STAMP)
	$(BIN)/python -m benchmarks.loadtest $(LOADTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info

# Regenerate the single initial migration from the models (pre-release: one revision).
schema: $(STAMP)
	rm -f migrations/versions/*.py
	tmp=$$(mktemp -d) && INSTANCE_DIR=$$tmp $(BIN)/flask db migrate -m "initial schema" && rm -rf $$tmp
