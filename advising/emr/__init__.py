"""EMR delivery: package the jobs, submit a night's run to EMR (or EMR Serverless), schedule it with Airflow.

Modules: settings (typed configuration), steps (the one step definition), launch (RunJobFlow and
StartJobRun requests), package (artifact upload), submit (idempotent submission and waiting),
aws (boto3 clients and error reporting), cli (`advising emr package|submit`).
"""
