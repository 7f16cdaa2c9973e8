{#- Every stg_tweets row of the window that is not in tweets_clean, with why: nothing is
    dropped without a trace, and per month staged rows = tweets_clean + tweets_dropped
    (the every_staged_row_accounted_for test). Incremental per month window exactly like
    tweets_clean (same vars, same pre-hook), so the two stay in step. A row is recorded in
    its own month, even when the copy that was kept lives in another one. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='month',
    on_schema_change='fail',
    pre_hook="{% if is_incremental() %}delete from {{ this }} where {{ month_window_predicate('month') }}{% endif %}"
) }}

{{ tweet_copies_ctes() }},

dropped as (
    -- Checked in this order; the first that applies is the reason.
    select *, 'contradictory_labels' as reason
    from staged
    semi join contradictory using (tweet_id)

    union all by name

    select *, 'empty_text' as reason
    from staged
    anti join contradictory using (tweet_id)
    where text is null or text = ''

    union all by name

    select * exclude (copy_rank), 'duplicate' as reason
    from ranked
    where copy_rank > 1

    union all by name

    -- Ingestion always sets an id (a content hash when the file has none); counted anyway.
    select *, 'missing_tweet_id' as reason
    from {{ ref('stg_tweets') }}
    where tweet_id is null
)

select
    {{ clean_tweet_columns() }},
    cast(source_row as bigint) as source_row,
    cast(reason as varchar) as reason
from dropped
where {{ month_window_predicate('month') }}
