from dagster_dbt import DbtProject

from sentiment_assets.lib.settings import DBT_PROJECT_DIR

# The manifest is prepared once by `make setup` (dbt parse), never at import: parsing in
# every process that loads the code races under parallel backfills (dagster#33993).
dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
