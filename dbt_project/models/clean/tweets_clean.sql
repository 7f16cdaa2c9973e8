{#- Incremental per month: a run rebuilds the months in the dbt vars window
    [min_month, max_month) and leaves every other month alone. The pre-hook clears the
    window first (inside the model's transaction), so a month whose rows all vanished
    upstream is emptied too, which delete+insert on `month` alone would not do. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='month',
    on_schema_change='fail',
    pre_hook="{% if is_incremental() %}delete from {{ this }} where {{ month_window_predicate('month') }}{% endif %}"
) }}

with staged as (
    select *
    from {{ ref('stg_tweets') }}
    where tweet_id is not null
),

-- Label agreement is judged over every staged row of an id, in any month and whatever
-- its text, so the outcome for an id does not depend on the window being run.
flagged as (
    select
        *,
        min(label) over (partition by tweet_id) as min_label,
        max(label) over (partition by tweet_id) as max_label
    from staged
),

-- Ids with two different labels are label noise: drop all their rows. An unlabelled copy
-- (NULL) does not contradict a labelled one.
agreeing as (
    select *
    from flagged
    where (min_label is null or min_label = max_label)
      and text <> ''
),

-- One row per id: prefer a labelled copy, then the earliest, then a fixed source order.
deduplicated as (
    select *
    from agreeing
    qualify row_number() over (
        partition by tweet_id
        order by label is null, created_at, source, source_row, text_hash
    ) = 1
)

select
    cast(tweet_id as varchar) as tweet_id,
    cast(created_at as timestamp) as created_at,
    cast(month as date) as month,
    cast(text as varchar) as text,
    cast(text_hash as varchar) as text_hash,
    cast(label as integer) as label,
    cast(user_name as varchar) as user_name,
    cast(source as varchar) as source
from deduplicated
where {{ month_window_predicate('month') }}
