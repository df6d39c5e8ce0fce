-- The schema SQLModel.metadata.create_all made on PostgreSQL in the last release without
-- migrations (revision 0001): a database from before schema versions, in the upgrade tests.
CREATE TABLE blob (
	organization_id VARCHAR NOT NULL,
	sha256 VARCHAR NOT NULL,
	body BYTEA NOT NULL,
	size INTEGER NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (organization_id, sha256)
);
CREATE TABLE delivery (
	id SERIAL NOT NULL,
	organization_id VARCHAR NOT NULL,
	job_id VARCHAR NOT NULL,
	event_id VARCHAR NOT NULL,
	event_type VARCHAR NOT NULL,
	url VARCHAR,
	series INTEGER NOT NULL,
	attempt INTEGER NOT NULL,
	outcome VARCHAR NOT NULL,
	status_code INTEGER,
	error VARCHAR,
	duration_ms INTEGER NOT NULL,
	next_attempt_at TIMESTAMP WITH TIME ZONE,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id)
);
CREATE INDEX ix_delivery_job ON delivery (job_id, id);
CREATE INDEX ix_delivery_organization_id ON delivery (organization_id);
CREATE TABLE memoryentry (
	organization_id VARCHAR NOT NULL,
	key VARCHAR NOT NULL,
	text VARCHAR NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (organization_id, key)
);
CREATE TABLE organization (
	id VARCHAR NOT NULL,
	name VARCHAR NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id)
);
CREATE TABLE processusage (
	id SERIAL NOT NULL,
	organization_id VARCHAR NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	source_locale VARCHAR(64) NOT NULL,
	target_locale VARCHAR(64) NOT NULL,
	engine_id VARCHAR(64) NOT NULL,
	model VARCHAR(200),
	strings INTEGER NOT NULL,
	memory_hits INTEGER NOT NULL,
	input_tokens INTEGER NOT NULL,
	output_tokens INTEGER NOT NULL,
	provider_calls INTEGER NOT NULL,
	duration_ms INTEGER NOT NULL,
	trigger_type VARCHAR(64),
	file_path VARCHAR(4096),
	session_id VARCHAR(255),
	PRIMARY KEY (id)
);
CREATE INDEX ix_processusage_org_created ON processusage (organization_id, created_at);
CREATE TABLE webhookconfig (
	organization_id VARCHAR NOT NULL,
	default_url VARCHAR,
	secret VARCHAR NOT NULL,
	previous_secret VARCHAR,
	previous_until TIMESTAMP WITH TIME ZONE,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (organization_id)
);
CREATE TABLE apikey (
	id VARCHAR NOT NULL,
	organization_id VARCHAR NOT NULL,
	key_hash VARCHAR NOT NULL,
	email VARCHAR NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	revoked_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (id),
	FOREIGN KEY(organization_id) REFERENCES organization (id)
);
CREATE INDEX ix_apikey_organization_id ON apikey (organization_id);
CREATE TABLE engine (
	id VARCHAR NOT NULL,
	organization_id VARCHAR NOT NULL,
	name VARCHAR NOT NULL,
	description VARCHAR NOT NULL,
	is_default BOOLEAN NOT NULL,
	provider VARCHAR NOT NULL,
	config JSON NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(organization_id) REFERENCES organization (id)
);
CREATE INDEX ix_engine_organization_id ON engine (organization_id);
CREATE TABLE jobgroup (
	id VARCHAR NOT NULL,
	organization_id VARCHAR NOT NULL,
	engine_id VARCHAR NOT NULL,
	source_locale VARCHAR NOT NULL,
	target_locales JSON NOT NULL,
	source_ref VARCHAR NOT NULL,
	context VARCHAR,
	hints JSON,
	locked_keys JSON,
	callback_url VARCHAR,
	idempotency_key VARCHAR,
	fingerprint VARCHAR NOT NULL,
	status VARCHAR NOT NULL,
	event_log JSON,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	completed_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (id),
	FOREIGN KEY(organization_id) REFERENCES organization (id)
);
CREATE INDEX ix_jobgroup_organization_id ON jobgroup (organization_id);
CREATE TABLE job (
	id VARCHAR NOT NULL,
	group_id VARCHAR NOT NULL,
	organization_id VARCHAR NOT NULL,
	engine_id VARCHAR NOT NULL,
	source_locale VARCHAR NOT NULL,
	target_locale VARCHAR NOT NULL,
	status VARCHAR NOT NULL,
	output_ref VARCHAR,
	error VARCHAR,
	warnings JSON,
	steps JSON,
	usage JSON,
	attempts INTEGER NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	started_at TIMESTAMP WITH TIME ZONE,
	completed_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (id),
	FOREIGN KEY(group_id) REFERENCES jobgroup (id)
);
CREATE INDEX ix_job_group_id ON job (group_id);
CREATE INDEX ix_job_org_created ON job (organization_id, created_at, id);
CREATE INDEX ix_job_organization_id ON job (organization_id);
