-- Cleaned text and mapped labels, one row per raw row (de-duplication is tweets_clean's job).
-- The cleaning rules are in macros/text_cleaning.sql; sentiment_assets/lib/text.py repeats
-- them for prediction time.
with raw_tweets as (
    select * from {{ source('raw', 'tweets') }}
),

cleaned as (
    select
        tweet_id,
        created_at,
        month,
        {{ clean_tweet_text('text') }} as text,
        text as text_raw,
        {{ map_sentiment_label('label_raw') }} as label,
        label_raw,
        user_name,
        source,
        source_row,
        ingested_at
    from raw_tweets
)

select
    tweet_id,
    created_at,
    month,
    text,
    md5(text) as text_hash,
    label,
    text_raw,
    label_raw,
    user_name,
    source,
    source_row,
    ingested_at
from cleaned
