{#-
  Tweet text normalisation. sentiment_assets/lib/text.py is the Python twin used at
  prediction time; the two must agree exactly (tests/dbt checks parity), so every rule
  here has a counterpart there with the same meaning in RE2 and in Python's `re`.
  Explicit character classes are used instead of \s and \w because the engines disagree
  on them (RE2's \s has no vertical tab and no Unicode spaces).
-#}

{#- The code points for which Python's str.isspace() is true. -#}
{% macro _ws_class() -%}
\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}
{%- endmacro %}

{#- Code point of a numeric entity token ('&#65;' or '&#x41;'); digits are limited by the
    tokenizer so the value fits an INTEGER. -#}
{% macro _entity_code_point(tok) -%}
(case when substr({{ tok }}, 3, 1) in ('x', 'X')
      then cast('0x' || substr({{ tok }}, 4, length({{ tok }}) - 4) as integer)
      else cast(substr({{ tok }}, 3, length({{ tok }}) - 3) as integer) end)
{%- endmacro %}

{#- Single left-to-right pass, like the Python twin: the text is split into entities,
    runs without '&', and lone '&', and each token is mapped on its own, so decoded
    output is never decoded again ('&amp;lt;' gives '&lt;'). Invalid code points
    (0, surrogates, above U+10FFFF) keep the entity as written. -#}
{% macro decode_html_entities(col) -%}
(case when contains({{ col }}, '&') then array_to_string(list_transform(
    regexp_extract_all({{ col }}, '&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|amp|lt|gt|quot|apos);|[^&]+|&'),
    lambda tok: case
        when tok = '&amp;' then '&'
        when tok = '&lt;' then '<'
        when tok = '&gt;' then '>'
        when tok = '&quot;' then '"'
        when tok = '&apos;' then ''''
        when starts_with(tok, '&#') then (
            case when {{ _entity_code_point('tok') }} between 1 and 1114111
                  and {{ _entity_code_point('tok') }} not between 55296 and 57343
                 then chr({{ _entity_code_point('tok') }})
                 else tok end)
        else tok end
  ), '') else {{ col }} end)
{%- endmacro %}

{#- Entities, then URLs -> 'http', then @mentions -> '@user', then whitespace runs -> one
    space, then trim. URLs go before mentions so an '@' inside a URL is not a mention. -#}
{% macro clean_tweet_text(col) -%}
trim(
  regexp_replace(
    regexp_replace(
      regexp_replace(
        {{ decode_html_entities(col) }},
        '[Hh][Tt][Tt][Pp][Ss]?://[^{{ _ws_class() }}]*|\b[Ww][Ww][Ww]\.[A-Za-z0-9][^{{ _ws_class() }}]*',
        'http', 'g'),
      '\B@[A-Za-z0-9_]+', '@user', 'g'),
    '[{{ _ws_class() }}]+', ' ', 'g'),
  ' ')
{%- endmacro %}

{#- Raw label (contract values) to 0 = negative, 1 = positive, NULL = neutral/unlabelled.
    Same table as map_label() in the Python twin. -#}
{% macro map_sentiment_label(col) -%}
cast(case {{ col }}
    when '0' then 0
    when 'negative' then 0
    when '1' then 1
    when '4' then 1
    when 'positive' then 1
    else null end as integer)
{%- endmacro %}
