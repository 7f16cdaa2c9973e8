{#- Incremental per month: a run rebuilds the months in the dbt vars window
    [min_month, max_month) and leaves every other month alone. The pre-hook clears the
    window first (inside the model's transaction), so a month whose rows all vanished
    upstream is emptied too, which delete+insert on `month` alone would not do.
    Which copy of an id is kept is decided in macros/tweet_copies.sql; the other rows go to
    tweets_dropped with their reason. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='month',
    on_schema_change='fail',
    pre_hook="{% if is_incremental() %}delete from {{ this }} where {{ month_window_predicate('month') }}{% endif %}"
) }}

{{ tweet_copies_ctes() }}

select
    {{ clean_tweet_columns() }}
from ranked
where copy_rank = 1
  and {{ month_window_predicate('month') }}
