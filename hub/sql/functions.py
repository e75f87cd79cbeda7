"""Which functions and table functions a query of the SQL interface may call: an allow-list.

A name followed by ``(`` in a query is a call (of a function, an aggregate function, a table
function, or a data type's parameters), and the guard lets it through only when it is listed
here, in any letter case. Everything else is refused, so a function or table function that a
newer engine adds is refused until it is reviewed and listed. ``tests/unit/test_sql_functions.py``
classifies every row of the engine's ``system.functions`` and ``system.table_functions``: each is
either allowed here or refused with its reason in ``REFUSED`` / ``REFUSED_TABLE_FUNCTIONS``, and it
fails on a row that is neither, the list to review after an engine upgrade
(``python -m hub.sql.unclassified`` prints them).

Refused are the calls that reach outside the query's own data: the file system, the network,
other servers, programs, dictionaries (whose sources can be any of those), the server's
configuration, identity and access control, the request's HTTP details, internals of the engine,
and calls that stall the engine or write somewhere (Keeper, the server log).
"""

from __future__ import annotations


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _refuse(reason: str, text: str) -> None:
    for name in text.split():
        REFUSED[name] = reason


# ---- functions (system.functions of chDB 26.9), generated then reviewed ---------------------------
# Functions a query may call (aliases included).
ALLOWED = _names('''
CARDINALITY CAST CHARACTER_LENGTH CHAR_LENGTH CRC32 CRC32IEEE CRC64 DATABASE DATE DATE_DIFF
DATE_FORMAT DATE_TRUNC DAY DAYOFMONTH DAYOFWEEK DAYOFYEAR FORMAT_BYTES FROM_BASE64 FROM_DAYS
FROM_UNIXTIME HMAC HOUR INET6_ATON INET6_NTOA INET_ATON INET_NTOA IPv4CIDRToRange IPv4NumToString
IPv4NumToStringClassC IPv4StringToNum IPv4StringToNumOrDefault IPv4StringToNumOrNull IPv4ToIPv6
IPv6CIDRToRange IPv6NumToString IPv6StringToNum IPv6StringToNumOrDefault IPv6StringToNumOrNull
JSONAllPaths JSONAllPathsWithTypes JSONAllValues JSONArrayLength JSONDynamicPaths
JSONDynamicPathsWithTypes JSONExtract JSONExtractArrayRaw JSONExtractArrayRawCaseInsensitive
JSONExtractBool JSONExtractBoolCaseInsensitive JSONExtractCaseInsensitive JSONExtractFloat
JSONExtractFloatCaseInsensitive JSONExtractInt JSONExtractIntCaseInsensitive JSONExtractKeys
JSONExtractKeysAndValues JSONExtractKeysAndValuesCaseInsensitive JSONExtractKeysAndValuesRaw
JSONExtractKeysAndValuesRawCaseInsensitive JSONExtractKeysCaseInsensitive JSONExtractRaw
JSONExtractRawCaseInsensitive JSONExtractString JSONExtractStringCaseInsensitive JSONExtractUInt
JSONExtractUIntCaseInsensitive JSONHas JSONKey JSONLength JSONMergePatch JSONSharedDataPaths
JSONSharedDataPathsWithTypes JSONType JSON_ARRAY_LENGTH JSON_EXISTS JSON_QUERY JSON_VALUE L1Distance
L1Norm L1Normalize L2Distance L2DistanceTransposed L2DistanceTransposedQuantized L2Norm L2Normalize
L2SquaredDistance L2SquaredNorm LAST_DAY LinfDistance LinfNorm LinfNormalize LpDistance LpNorm
LpNormalize MACNumToString MACStringToNum MACStringToOUI MAP_FROM_ARRAYS MD4 MD5 MGRSToGeo
MICROSECOND MILLISECOND MINUTE MONTH MVTBoundingBox MVTBoundingBoxMercator MVTEncodeGeom NANOSECOND
NATURAL_SORT_KEY OCTET_LENGTH QUARTER REGEXP_EXTRACT REGEXP_MATCHES REGEXP_REPLACE REGEXP_SUBSTR
RIPEMD160 SCHEMA SECOND SHA1 SHA224 SHA256 SHA384 SHA512 SHA512_256 ST_AsMVTGeom ST_LineFromWKB
ST_MLineFromWKB ST_MPointFromWKB ST_MPolyFromWKB ST_PointFromWKB ST_PolyFromWKB SUBSTRING_INDEX SVG
TIMESTAMP_DIFF TO_BASE64 TO_DAYS TO_UNIXTIME URLHash URLHierarchy URLPathHierarchy UTCTimestamp
UTC_timestamp UTMToGeo UUIDNumToString UUIDStringToNum UUIDToNum UUIDv7ToDateTime WKB WKT YEAR
YYYYMMDDToDate YYYYMMDDToDate32 YYYYMMDDhhmmssToDateTime YYYYMMDDhhmmssToDateTime64 abs accurateCast
accurateCastOrDefault accurateCastOrNull acos acosh addDate addDays addHours addInterval
addMicroseconds addMilliseconds addMinutes addMonths addNanoseconds addQuarters addSeconds
addTupleOfIntervals addWeeks addYears aes_decrypt_mysql aes_encrypt_mysql age alphaTokens and
appendTrailingCharIfAbsent areaCartesian areaSpherical array arrayAUC arrayAUCPR arrayAll
arrayAutocorrelation arrayAvg arrayBottomK arrayCompact arrayConcat arrayCount arrayCumSum
arrayCumSumNonNegative arrayDifference arrayDistinct arrayDotProduct arrayElement arrayElementOrNull
arrayEnumerate arrayEnumerateDense arrayEnumerateDenseRanked arrayEnumerateUniq
arrayEnumerateUniqRanked arrayExcept arrayExists arrayFill arrayFilter arrayFirst arrayFirstIndex
arrayFirstOrNull arrayFlatten arrayFlattenedLength arrayFold arrayIntersect arrayJaccardIndex
arrayJoin arrayLast arrayLastIndex arrayLastOrNull arrayLevenshteinDistance
arrayLevenshteinDistanceWeighted arrayMap arrayMax arrayMin arrayNormalizedGini arrayPRAUC
arrayPartialReverseSort arrayPartialShuffle arrayPartialSort arrayPopBack arrayPopFront arrayProduct
arrayPushBack arrayPushFront arrayROCAUC arrayRandomSample arrayReduce arrayReduceInRanges
arrayRemove arrayResize arrayReverse arrayReverseFill arrayReverseSort arrayReverseSplit
arrayRotateLeft arrayRotateRight arrayShiftLeft arrayShiftRight arrayShingles arrayShuffle
arraySimilarity arraySlice arraySort arraySplit arrayStringConcat arraySum arraySymmetricDifference
arrayTopK arrayTranspose arrayUnion arrayUniq arrayWithConstant arrayZip arrayZipUnaligned
array_remove array_to_string ascii asin asinh assignCentroid assumeNotNull atan atan2 atanh avg2 bar
base32Decode base32Encode base58Decode base58Encode base64Decode base64Encode base64URLDecode
base64URLEncode basename bin bitAnd bitCount bitHammingDistance bitNot bitOr bitPositionsToArray
bitRotateLeft bitRotateRight bitShiftLeft bitShiftRight bitSlice bitTest bitTestAll bitTestAny
bitXor bitmapAnd bitmapAndCardinality bitmapAndnot bitmapAndnotCardinality bitmapBuild
bitmapCardinality bitmapContains bitmapHasAll bitmapHasAny bitmapMax bitmapMin bitmapOr
bitmapOrCardinality bitmapSubsetInRange bitmapSubsetLimit bitmapToArray bitmapTransform bitmapXor
bitmapXorCardinality bitmaskToArray bitmaskToList blockNumber blockSerializedSize blockSize
byteHammingDistance byteSize byteSlice byteSwap caseFoldUTF8 caseWithoutExpr caseWithoutExpression
cbrt ceil ceiling changeDay changeHour changeMinute changeMonth changeSecond changeYear char chdb
cityHash64 clamp coalesce colorOKLABToSRGB colorOKLCHToSRGB colorSRGBToOKLAB colorSRGBToOKLCH
compareSubstrings concat concatAssumeInjective concatWithSeparator
concatWithSeparatorAssumeInjective concat_ws connectionId connection_id conv convertCharset cos cosh
cosineDistance cosineDistanceTransposed cosineDistanceTransposedQuantized countDigits countEqual
countMatches countMatchesCaseInsensitive countSubstrings countSubstringsCaseInsensitive
countSubstringsCaseInsensitiveUTF8 curdate currentDatabase currentQueryID currentSchemas
current_database current_date current_query_id current_schemas current_timestamp cutFragment cutIPv6
cutQueryString cutQueryStringAndFragment cutToFirstSignificantSubdomain
cutToFirstSignificantSubdomainCustom cutToFirstSignificantSubdomainCustomRFC
cutToFirstSignificantSubdomainCustomWithWWW cutToFirstSignificantSubdomainCustomWithWWWRFC
cutToFirstSignificantSubdomainRFC cutToFirstSignificantSubdomainWithWWW
cutToFirstSignificantSubdomainWithWWWRFC cutURLParameter cutWWW damerauLevenshteinDistance dateDiff
dateName dateTime64ToSnowflakeID dateTimeToSnowflakeID dateTimeToUUIDv7 dateTrunc date_bin date_diff
decodeHTMLComponent decodeURLComponent decodeURLFormComponent decodeXMLComponent decrypt
defaultValueOfArgumentType defaultValueOfTypeName degrees dequantizeInt8ToBFloat16 digits
distanceCosine distanceCosineTransposed distanceL1 distanceL2 distanceL2Squared distanceL2Transposed
distanceLinf distanceLp divide divideDecimal divideOrNull domain domainRFC domainWithoutWWW
domainWithoutWWWRFC dotProduct dotProductTransposed dotProductTransposedQuantized
dumpColumnStructure dynamicElement dynamicType e editDistance editDistanceUTF8 empty emptyArrayDate
emptyArrayDateTime emptyArrayFloat32 emptyArrayFloat64 emptyArrayInt16 emptyArrayInt32
emptyArrayInt64 emptyArrayInt8 emptyArrayString emptyArrayToSingle emptyArrayUInt16 emptyArrayUInt32
emptyArrayUInt64 emptyArrayUInt8 encodeURLComponent encodeURLFormComponent encodeXMLComponent
encrypt endsWith endsWithCaseInsensitive endsWithCaseInsensitiveUTF8 endsWithUTF8 equals erf erfc
errorCodeToName evalMLMethod exp exp10 exp2 extract extractAll extractAllGroups
extractAllGroupsHorizontal extractAllGroupsVertical extractGroups extractKeyValuePairs
extractKeyValuePairsWithEscaping extractTextFromHTML extractURLParameter extractURLParameterNames
extractURLParameters factorial farmFingerprint64 farmHash64 finalizeAggregation
financialInternalRateOfReturn financialInternalRateOfReturnExtended financialNetPresentValue
financialNetPresentValueExtended firstLine firstNonDefault firstSignificantSubdomain
firstSignificantSubdomainCustom firstSignificantSubdomainCustomRFC firstSignificantSubdomainRFC
flatten flattenTuple flipCoordinates floor format formatDateTime formatDateTimeInJodaSyntax
formatQuery formatQueryFromJSON formatQueryOrNull formatQuerySingleLine formatQuerySingleLineOrNull
formatReadableDecimalSize formatReadableQuantity formatReadableSize formatReadableTimeDelta
formatRow formatRowNoNewline fragment fromDaysSinceYearZero fromDaysSinceYearZero32
fromModifiedJulianDay fromModifiedJulianDayOrNull fromUTCTimestamp fromUnixTimestamp
fromUnixTimestamp64Micro fromUnixTimestamp64Milli fromUnixTimestamp64Nano fromUnixTimestamp64Second
fromUnixTimestampInJodaSyntax from_utc_timestamp fuzzBits gccMurmurHash gcd
generateRandomStructure generateSnowflakeID generateUUIDv4 generateUUIDv7 geoDistance geoToH3
geoToMGRS geoToUTM geohashDecode geohashEncode geohashesInBox geometryIntersectCartesian
geometryIntersectSpherical getSetting getSettingOrDefault getSizeOfEnumType getSubcolumn
getTypeSerializationStreams globalIn globalInIgnoreSet globalNotIn globalNotInIgnoreSet
globalNotNullIn globalNotNullInIgnoreSet globalNullIn globalNullInIgnoreSet globalVariable
greatCircleAngle greatCircleDistance greater greaterOrEquals greatest h3CellAreaM2 h3CellAreaRads2
h3Distance h3EdgeAngle h3EdgeLengthKm h3EdgeLengthM h3ExactEdgeLengthKm h3ExactEdgeLengthM
h3ExactEdgeLengthRads h3GetBaseCell h3GetDestinationIndexFromUnidirectionalEdge h3GetFaces
h3GetIndexesFromUnidirectionalEdge h3GetOriginIndexFromUnidirectionalEdge h3GetPentagonIndexes
h3GetRes0Indexes h3GetResolution h3GetUnidirectionalEdge h3GetUnidirectionalEdgeBoundary
h3GetUnidirectionalEdgesFromHexagon h3HexAreaKm2 h3HexAreaM2 h3HexRing h3IndexesAreNeighbors
h3IsPentagon h3IsResClassIII h3IsValid h3Line h3NumHexagons h3PointDistKm h3PointDistM
h3PointDistRads h3PolygonToCells h3PolygonToCellsWithContainment h3ToCenterChild h3ToChildren
h3ToGeo h3ToGeoBoundary h3ToParent h3ToString h3UnidirectionalEdgeIsValid h3kRing halfMD5 has hasAll
hasAllToken hasAllTokens hasAny hasAnyToken hasAnyTokens hasPhrase hasSubsequence
hasSubsequenceCaseInsensitive hasSubsequenceCaseInsensitiveUTF8 hasSubsequenceUTF8 hasSubstr
hasThreadFuzzer hasToken hasTokenCaseInsensitive hasTokenCaseInsensitiveOrNull hasTokenOrNull hex
highlight highlightQuery hilbertDecode hilbertEncode hiveHash hop hopEnd hopStart hypot
icebergBucket icebergHash icebergTruncate identity if ifNotFinite ifNull ignore ilike in inIgnoreSet
indexHint indexOf indexOfAssumeSorted initcap initcapUTF8 initialQueryID initialQueryStartTime
initial_query_id initial_query_start_time initializeAggregation instr intDiv intDivOrNull
intDivOrZero intExp10 intExp2 intHash32 intHash64 isASCII isConstant isDecimalOverflow
isDistinctFrom isDynamicElementInSharedData isFinite isIPAddressInRange isIPv4String isIPv6String
isInfinite isNaN isNotDistinctFrom isNotNull isNull isNullable isPrime isProbablePrime isValidASCII
isValidJSON isValidUTF8 isZeroOrNull jaroSimilarity jaroWinklerSimilarity javaHash javaHashUTF16LE
jsonMergePatch jumpConsistentHash kafkaMurmurHash keccak256 kostikConsistentHash kqlBin kqlBinAt
kqlDateTimeBinAt kqlDivide kqlMultiply kqlParameterCast kqlRangeCount kqlToTimespan lcase lcm least
left leftPad leftPadUTF8 leftUTF8 length lengthUTF8 less lessOrEquals levenshteinDistance
levenshteinDistanceUTF8 lgamma like ln localtime localtimestamp locate log log10 log1p log2
lowCardinalityIndices lowCardinalityKeys lower lowerUTF8 lpad ltrim makeDate makeDate32 makeDateTime
makeDateTime64 map mapAdd mapAll mapApply mapConcat mapContains mapContainsKey mapContainsKeyLike
mapContainsValue mapContainsValueLike mapExists mapExtractKeyLike mapExtractValueLike mapFilter
mapFromArrays mapFromString mapKeys mapPartialReverseSort mapPartialSort mapPopulateSeries
mapReverseSort mapSort mapSubtract mapUpdate mapValues match matchCaseInsensitive matchPhrase
materialize max2 metroHash64 mid midpoint min2 minSampleSizeContinous minSampleSizeContinuous
minSampleSizeConversion minus mismatches mod modOrNull modulo moduloLegacy moduloOrNull moduloOrZero
monthName mortonDecode mortonEncode multiFuzzyMatchAllIndices multiFuzzyMatchAny
multiFuzzyMatchAnyIndex multiIf multiMatchAllIndices multiMatchAny multiMatchAnyIndex
multiSearchAllPositions multiSearchAllPositionsCaseInsensitive
multiSearchAllPositionsCaseInsensitiveUTF8 multiSearchAllPositionsUTF8 multiSearchAny
multiSearchAnyCaseInsensitive multiSearchAnyCaseInsensitiveUTF8 multiSearchAnyUTF8
multiSearchFirstIndex multiSearchFirstIndexCaseInsensitive multiSearchFirstIndexCaseInsensitiveUTF8
multiSearchFirstIndexUTF8 multiSearchFirstPosition multiSearchFirstPositionCaseInsensitive
multiSearchFirstPositionCaseInsensitiveUTF8 multiSearchFirstPositionUTF8 multiply multiplyDecimal
murmurHash2_32 murmurHash2_64 murmurHash3_128 murmurHash3_32 murmurHash3_64 naiveBayesNgrams
naturalSortKey negate neighbor netloc ngramDistance ngramDistanceCaseInsensitive
ngramDistanceCaseInsensitiveUTF8 ngramDistanceUTF8 ngramMinHash ngramMinHashArg
ngramMinHashArgCaseInsensitive ngramMinHashArgCaseInsensitiveUTF8 ngramMinHashArgUTF8
ngramMinHashCaseInsensitive ngramMinHashCaseInsensitiveUTF8 ngramMinHashUTF8 ngramSearch
ngramSearchCaseInsensitive ngramSearchCaseInsensitiveUTF8 ngramSearchUTF8 ngramSimHash
ngramSimHashCaseInsensitive ngramSimHashCaseInsensitiveUTF8 ngramSimHashUTF8 ngrams normL1 normL2
normL2Squared normLinf normLp normalizeL1 normalizeL2 normalizeLinf normalizeLp normalizeQuery
normalizeQueryKeepNames normalizeUTF8NFC normalizeUTF8NFD normalizeUTF8NFKC
normalizeUTF8NFKCCasefold normalizeUTF8NFKD normalizedQueryHash normalizedQueryHashKeepNames not
notEmpty notEquals notHas notILike notIn notInIgnoreSet notLike notMatch notMatchCaseInsensitive
notNullIn notNullInIgnoreSet now now64 nowInBlock nowInBlock64 nullIf nullIn nullInIgnoreSet
numericIndexedVectorAllValueSum numericIndexedVectorBuild numericIndexedVectorCardinality
numericIndexedVectorGetValue numericIndexedVectorPointwiseAdd numericIndexedVectorPointwiseDivide
numericIndexedVectorPointwiseEqual numericIndexedVectorPointwiseGreater
numericIndexedVectorPointwiseGreaterEqual numericIndexedVectorPointwiseLess
numericIndexedVectorPointwiseLessEqual numericIndexedVectorPointwiseMultiply
numericIndexedVectorPointwiseNotEqual numericIndexedVectorPointwiseSubtract
numericIndexedVectorShortDebugString numericIndexedVectorToMap obfuscateQuery obfuscateQueryWithSeed
or overlay overlayUTF8 parseDateTime parseDateTime32BestEffort parseDateTime32BestEffortOrNull
parseDateTime32BestEffortOrZero parseDateTime64 parseDateTime64BestEffort
parseDateTime64BestEffortOrNull parseDateTime64BestEffortOrZero parseDateTime64BestEffortUS
parseDateTime64BestEffortUSOrNull parseDateTime64BestEffortUSOrZero parseDateTime64InJodaSyntax
parseDateTime64InJodaSyntaxOrNull parseDateTime64InJodaSyntaxOrZero parseDateTime64OrNull
parseDateTime64OrZero parseDateTimeBestEffort parseDateTimeBestEffortOrNull
parseDateTimeBestEffortOrZero parseDateTimeBestEffortUS parseDateTimeBestEffortUSOrNull
parseDateTimeBestEffortUSOrZero parseDateTimeInJodaSyntax parseDateTimeInJodaSyntaxOrNull
parseDateTimeInJodaSyntaxOrZero parseDateTimeOrNull parseDateTimeOrZero parseISO8601Duration
parseQueryToJSON parseReadableSize parseReadableSizeOrNull parseReadableSizeOrZero parseTimeDelta
partitionID partitionId path pathFull perimeterCartesian perimeterSpherical pgTableIsVisible
pg_table_is_visible pi plus pmod pmodOrNull pointInEllipses pointInPolygon polygonAreaCartesian
polygonAreaSpherical polygonConvexHullCartesian polygonPerimeterCartesian polygonPerimeterSpherical
polygonsDistanceCartesian polygonsDistanceSpherical polygonsEqualsCartesian
polygonsIntersectCartesian polygonsIntersectSpherical polygonsIntersectionCartesian
polygonsIntersectionSpherical polygonsSymDifferenceCartesian polygonsSymDifferenceSpherical
polygonsUnionCartesian polygonsUnionSpherical polygonsWithinCartesian polygonsWithinSpherical port
portRFC position positionCaseInsensitive positionCaseInsensitiveUTF8 positionUTF8 positiveModulo
positiveModuloOrNull positive_modulo positive_modulo_or_null pow power prettyPrintJSON printf
proportionsZTest protocol quantizeBFloat16ToInt8 queryID queryString queryStringAndFragment query_id
radians rand rand32 rand64 randBernoulli randBinomial randCanonical randChiSquared randConstant
randExponential randFisherF randLogNormal randNegativeBinomial randNormal randPoisson randStudentT
randUniform randomFixedString randomHadamardTransform randomPrintableASCII randomString
randomStringUTF8 range readWKB readWKBLineString readWKBMultiLineString readWKBMultiPoint
readWKBMultiPolygon readWKBPoint readWKBPolygon readWKT readWKTLineString readWKTMultiLineString
readWKTMultiPoint readWKTMultiPolygon readWKTPoint readWKTPolygon readWKTRing readWkb readWkt
regexpExtract regexpInstr regexpPosition regexpQuoteMeta regexp_instr reinterpret reinterpretAsDate
reinterpretAsDateTime reinterpretAsFixedString reinterpretAsFloat32 reinterpretAsFloat64
reinterpretAsInt128 reinterpretAsInt16 reinterpretAsInt256 reinterpretAsInt32 reinterpretAsInt64
reinterpretAsInt8 reinterpretAsString reinterpretAsUInt128 reinterpretAsUInt16 reinterpretAsUInt256
reinterpretAsUInt32 reinterpretAsUInt64 reinterpretAsUInt8 reinterpretAsUUID removeAccentsUTF8
removeDiacriticsUTF8 repeat replace replaceAll replaceOne replaceRegexpAll replaceRegexpOne
replicate reverse reverseBySeparator reverseUTF8 revision right rightPad rightPadUTF8 rightUTF8
round roundAge roundBankers roundDown roundDuration roundToExp2 rowNumberInAllBlocks
rowNumberInBlock rpad rtrim runningAccumulate runningConcurrency runningDifference
runningDifferenceStartingWithFirstValue scalarProduct scalarProductTransposed seriesDecomposeSTL
seriesOutliersDetectTukey serverTimeZone serverTimezone shardCount shardNum sigmoid sign
simpleJSONExtractBool simpleJSONExtractFloat simpleJSONExtractInt simpleJSONExtractRaw
simpleJSONExtractString simpleJSONExtractUInt simpleJSONHas sin sinh sipHash128 sipHash128Keyed
sipHash128Reference sipHash128ReferenceKeyed sipHash64 sipHash64Keyed snowflakeIDToDateTime
snowflakeIDToDateTime64 soundex space sparseGrams sparseGramsHashes sparseGramsHashesUTF8
sparseGramsUTF8 splitByAlpha splitByChar splitByNonAlpha splitByRegexp splitByString
splitByWhitespace sqid sqidDecode sqidEncode sqr sqrt startsWith startsWithCaseInsensitive
startsWithCaseInsensitiveUTF8 startsWithUTF8 str_to_date str_to_map stringBytesEntropy
stringBytesUniq stringJaccardIndex stringJaccardIndexUTF8 stringToH3 structureToCapnProtoSchema
structureToProtobufSchema subBitmap subDate substr substring substringIndex substringIndexUTF8
substringUTF8 subtractDays subtractHours subtractInterval subtractMicroseconds subtractMilliseconds
subtractMinutes subtractMonths subtractNanoseconds subtractQuarters subtractSeconds
subtractTupleOfIntervals subtractWeeks subtractYears svg tan tanh tgamma throwIf timeDiff
timeSeriesCopyTag timeSeriesCopyTags timeSeriesExtractTag timeSeriesFromGrid
timeSeriesGroupToSamplingKey timeSeriesGroupToTags timeSeriesIdToGroup timeSeriesIdToTags
timeSeriesIdToTagsGroup timeSeriesJoinTags timeSeriesMetricTypeToSuffixes
timeSeriesPrometheusValueToString timeSeriesRange timeSeriesRemoveAllTagsExcept timeSeriesRemoveTag
timeSeriesRemoveTags timeSeriesReplaceTag timeSeriesStoreTags timeSeriesTagsGroupToTags
timeSeriesTagsToGroup timeSeriesTagsToMap timeSeriesThrowDuplicateSeriesIf timeSlot timeSlots
timeZone timeZoneOf timeZoneOffset time_bucket timestamp timestampDiff timestamp_diff timezone
timezoneOf timezoneOffset toBFloat16 toBFloat16OrNull toBFloat16OrZero toBool toColumnTypeName
toDate toDate32 toDate32OrDefault toDate32OrNull toDate32OrZero toDateOrDefault toDateOrNull
toDateOrZero toDateTime toDateTime32 toDateTime64 toDateTime64OrDefault toDateTime64OrNull
toDateTime64OrZero toDateTimeOrDefault toDateTimeOrNull toDateTimeOrZero toDayOfMonth toDayOfWeek
toDayOfYear toDaysInMonth toDaysSinceYearZero toDecimal128 toDecimal128OrDefault toDecimal128OrNull
toDecimal128OrZero toDecimal256 toDecimal256OrDefault toDecimal256OrNull toDecimal256OrZero
toDecimal32 toDecimal32OrDefault toDecimal32OrNull toDecimal32OrZero toDecimal64
toDecimal64OrDefault toDecimal64OrNull toDecimal64OrZero toDecimalString toFixedString toFloat32
toFloat32OrDefault toFloat32OrNull toFloat32OrZero toFloat64 toFloat64OrDefault toFloat64OrNull
toFloat64OrZero toHour toIPv4 toIPv4OrDefault toIPv4OrNull toIPv4OrZero toIPv6 toIPv6OrDefault
toIPv6OrNull toIPv6OrZero toISOWeek toISOYear toInt128 toInt128OrDefault toInt128OrNull
toInt128OrZero toInt16 toInt16OrDefault toInt16OrNull toInt16OrZero toInt256 toInt256OrDefault
toInt256OrNull toInt256OrZero toInt32 toInt32OrDefault toInt32OrNull toInt32OrZero toInt64
toInt64OrDefault toInt64OrNull toInt64OrZero toInt8 toInt8OrDefault toInt8OrNull toInt8OrZero
toInterval toIntervalDay toIntervalHour toIntervalMicrosecond toIntervalMillisecond toIntervalMinute
toIntervalMonth toIntervalNanosecond toIntervalQuarter toIntervalSecond toIntervalWeek
toIntervalYear toJSONString toLastDayOfMonth toLastDayOfWeek toLowCardinality toMicrosecond
toMillisecond toMinute toModifiedJulianDay toModifiedJulianDayOrNull toMonday toMonth
toMonthNumSinceEpoch toNanosecond toNullable toQuarter toRelativeDayNum toRelativeHourNum
toRelativeMinuteNum toRelativeMonthNum toRelativeQuarterNum toRelativeSecondNum toRelativeWeekNum
toRelativeYearNum toSecond toStartOfDay toStartOfFifteenMinutes toStartOfFiveMinute
toStartOfFiveMinutes toStartOfHour toStartOfISOYear toStartOfInterval toStartOfMicrosecond
toStartOfMillisecond toStartOfMinute toStartOfMonth toStartOfNanosecond toStartOfQuarter
toStartOfSecond toStartOfTenMinutes toStartOfWeek toStartOfYear toString toStringCutToZero toTime
toTime64 toTime64OrNull toTime64OrZero toTimeOrNull toTimeOrZero toTimeWithFixedDate toTimeZone
toTimezone toTypeName toUInt128 toUInt128OrDefault toUInt128OrNull toUInt128OrZero toUInt16
toUInt16OrDefault toUInt16OrNull toUInt16OrZero toUInt256 toUInt256OrDefault toUInt256OrNull
toUInt256OrZero toUInt32 toUInt32OrDefault toUInt32OrNull toUInt32OrZero toUInt64 toUInt64OrDefault
toUInt64OrNull toUInt64OrZero toUInt8 toUInt8OrDefault toUInt8OrNull toUInt8OrZero toUTCTimestamp
toUUID toUUIDOrDefault toUUIDOrNull toUUIDOrZero toUnixTimestamp toUnixTimestamp64Micro
toUnixTimestamp64Milli toUnixTimestamp64Nano toUnixTimestamp64Second toValidUTF8 toWeek toYYYYMM
toYYYYMMDD toYYYYMMDDhhmmss toYear toYearNumSinceEpoch toYearWeek to_utc_timestamp today
tokenizeQuery tokens tokensForLikePattern topLevelDomain topLevelDomainRFC transactionID
transactionLatestSnapshot transactionOldestSnapshot transform translate translateUTF8 trim trimBoth
trimLeft trimRight trunc truncate tryBase32Decode tryBase58Decode tryBase64Decode tryBase64URLDecode
tryDecrypt tumble tumbleEnd tumbleStart tuple tupleConcat tupleDivide tupleDivideByNumber
tupleElement tupleHammingDistance tupleIntDiv tupleIntDivByNumber tupleIntDivOrZero
tupleIntDivOrZeroByNumber tupleMinus tupleModulo tupleModuloByNumber tupleMultiply
tupleMultiplyByNumber tupleNames tupleNegate tuplePlus tuplePositiveModuloByNumber
tupleToNameValuePairs ucase unbin unhex unnest upper upperUTF8 uptime variantElement variantType
vectorDifference vectorSum version visibleWidth visitParamExtractBool visitParamExtractFloat
visitParamExtractInt visitParamExtractRaw visitParamExtractString visitParamExtractUInt
visitParamHas week widthBucket width_bucket wkb wkt wordShingleMinHash wordShingleMinHashArg
wordShingleMinHashArgCaseInsensitive wordShingleMinHashArgCaseInsensitiveUTF8
wordShingleMinHashArgUTF8 wordShingleMinHashCaseInsensitive wordShingleMinHashCaseInsensitiveUTF8
wordShingleMinHashUTF8 wordShingleSimHash wordShingleSimHashCaseInsensitive
wordShingleSimHashCaseInsensitiveUTF8 wordShingleSimHashUTF8 wyHash64 xor xxHash32 xxHash64
xxHash64Spark xxh3 xxh3_128 yandexConsistentHash yearweek yesterday
''')

# Aggregate functions a query may call, also with combinators (COMBINATORS below).
AGGREGATES = _names('''
BIT_AND BIT_OR BIT_XOR COVAR_POP COVAR_SAMP MVTEncode STD STDDEV STDDEV_POP STDDEV_SAMP ST_AsMVT
VAR_POP VAR_SAMP aggThrow analysisOfVariance anova any anyHeavy anyLast anyLastRespectNulls
anyLast_respect_nulls anyRespectNulls anyValueRespectNulls any_respect_nulls any_value
any_value_respect_nulls approx_top_count approx_top_k approx_top_sum argAndMax argAndMin argMax
argMin array_agg array_concat_agg avg avgWeighted boundingRatio categoricalInformationValue
contingency corr corrMatrix corrStable count covarPop covarPopMatrix covarPopStable covarSamp
covarSampMatrix covarSampStable cramersV cramersVBiasCorrected cume_dist deltaSum deltaSumTimestamp
denseRank dense_rank distinctDynamicTypes distinctJSONPaths distinctJSONPathsAndTypes entropy
estimateCompressionRatio exponentialMovingAverage exponentialTimeDecayedAvg
exponentialTimeDecayedCount exponentialTimeDecayedMax exponentialTimeDecayedSum
firstValueRespectNulls first_value first_value_respect_nulls flameGraph gini groupArray
groupArrayInsertAt groupArrayIntersect groupArrayLast groupArrayMovingAvg groupArrayMovingSum
groupArraySample groupArraySorted groupBitAnd groupBitOr groupBitXor groupBitmap groupBitmapAnd
groupBitmapOr groupBitmapXor groupConcat groupFormat groupNumericIndexedVector groupUniqArray
group_concat hierarchicalKMeans histogram intervalLengthSum kolmogorovSmirnovTest kurtPop kurtSamp
lag lagInFrame largestTriangleThreeBuckets lastValueRespectNulls last_value last_value_respect_nulls
lead leadInFrame lttb mannWhitneyUTest max maxIntersections maxIntersectionsPosition maxMappedArrays
max_by meanZTest median medianBFloat16 medianBFloat16Weighted medianDD medianDeterministic
medianExact medianExactHigh medianExactLow medianExactWeighted medianExactWeightedInterpolated
medianGK medianInterpolatedWeighted medianTDigest medianTDigestWeighted medianTiming
medianTimingWeighted mergedJSONPatch min minMappedArrays min_by nonNegativeDerivative nothing
nothingNull nothingUInt64 nth_value ntile percentRank percent_rank quantile quantileBFloat16
quantileBFloat16Weighted quantileDD quantileDeterministic quantileExact quantileExactExclusive
quantileExactHigh quantileExactInclusive quantileExactLow quantileExactWeighted
quantileExactWeightedInterpolated quantileGK quantileInterpolatedWeighted
quantilePrometheusHistogram quantileTDigest quantileTDigestWeighted quantileTiming
quantileTimingWeighted quantiles quantilesBFloat16 quantilesBFloat16Weighted quantilesDD
quantilesDeterministic quantilesExact quantilesExactExclusive quantilesExactHigh
quantilesExactInclusive quantilesExactLow quantilesExactWeighted quantilesExactWeightedInterpolated
quantilesGK quantilesInterpolatedWeighted quantilesPrometheusHistogram quantilesTDigest
quantilesTDigestWeighted quantilesTiming quantilesTimingWeighted rank rankCorr regr_avgx regr_avgy
regr_count regr_intercept regr_r2 regr_slope regr_sxx regr_sxy regr_syy retention row_number
sequenceCount sequenceMatch sequenceMatchEvents sequenceNextNode simpleLinearRegression
singleValueOrNull skewPop skewSamp sparkBar sparkbar stddevPop stddevPopStable stddevSamp
stddevSampStable stochasticLinearRegression stochasticLogisticRegression string_agg studentTTest
studentTTestOneSample sum sumCount sumKahan sumMapFiltered sumMapFilteredWithOverflow
sumMapWithOverflow sumMappedArrays sumWithOverflow theilsU timeSeriesAvgToGrid
timeSeriesBottomKMasks timeSeriesChangesToGrid timeSeriesCountToGrid timeSeriesDeltaToGrid
timeSeriesDerivToGrid timeSeriesGroupArray timeSeriesIncreaseToGrid timeSeriesInstantDeltaToGrid
timeSeriesInstantRateToGrid timeSeriesLastToGrid timeSeriesLastTwoSamples timeSeriesLimitKMasks
timeSeriesMaxToGrid timeSeriesMinToGrid timeSeriesPredictLinearToGrid timeSeriesRateToGrid
timeSeriesResampleToGridWithStaleness timeSeriesResetsToGrid timeSeriesSumToGrid
timeSeriesTimestampOfMaxToGrid timeSeriesTimestampOfMinToGrid timeSeriesTopKMasks topK topKWeighted
uniq uniqCombined uniqCombined64 uniqExact uniqHLL12 uniqUpTo varPop varPopStable varSamp
varSampStable welchTTest windowFunnel
''')

# Every other function of the engine, with why: "<name>() is not allowed: it <reason>".
REFUSED: dict[str, str] = {}
_refuse('sends data to an external model service over the network', '''
AIClassify AIEmbed AIExtract AIFilter AIGenerate AIRedact AISimilarity AITranslate aiClassify
aiEmbed aiExtract aiFilter aiGenerate aiRedact aiSimilarity aiTranslate
''')
_refuse("reads the server's configuration or identity", '''
FQDN buildId displayName fullHostName getMacro getMaxTableNameLengthForDatabase getMergeTreeSetting
getOSKernelVersion getServerPort getServerSetting hostName hostname serverUUID showCertificate
tcpPort zookeeperSessionUptime
''')
_refuse('is internal to the engine', '''
_CAST __actionName __applyFilter __bitBoolMaskAnd __bitBoolMaskOr __bitSwapLastTwo __bitWrapperFunc
__getScalar __groupingForCube __groupingForGroupingSets __groupingForRollup __groupingOrdinary
__patchPartitionID __scalarSubqueryResult __toYearCalendarOnly caseWithExpr caseWithExpression
nested validateNestedArraySizes
''')
_refuse("reads the server's memory or binary (introspection)", '''
addressToLine addressToLineWithInlines addressToSymbol demangle tid
''')
_refuse('reads access control (users, roles, profiles)', '''
authUser authenticatedUser currentProfiles currentRoles currentUser current_user defaultProfiles
defaultRoles enabledProfiles enabledRoles pgGetUserById pg_get_userbyid session_user user
''')
_refuse("reads the request's HTTP details (which can carry credentials)", '''
currentHandler currentRequestURL getClientHTTPHeader
''')
_refuse('reads dictionaries, which can be backed by files, URLs or other servers', '''
dictGet dictGetAll dictGetChildren dictGetDate dictGetDateOrDefault dictGetDateTime
dictGetDateTimeOrDefault dictGetDescendants dictGetFloat32 dictGetFloat32OrDefault dictGetFloat64
dictGetFloat64OrDefault dictGetHierarchy dictGetIPv4 dictGetIPv4OrDefault dictGetIPv6
dictGetIPv6OrDefault dictGetInt16 dictGetInt16OrDefault dictGetInt32 dictGetInt32OrDefault
dictGetInt64 dictGetInt64OrDefault dictGetInt8 dictGetInt8OrDefault dictGetKeys dictGetOrDefault
dictGetOrNull dictGetRoot dictGetString dictGetStringOrDefault dictGetUInt16 dictGetUInt16OrDefault
dictGetUInt32 dictGetUInt32OrDefault dictGetUInt64 dictGetUInt64OrDefault dictGetUInt8
dictGetUInt8OrDefault dictGetUUID dictGetUUIDOrDefault dictHas dictIsIn
''')
_refuse("reads the server's file system", '''
file filesystemAvailable filesystemCapacity filesystemUnreserved
''')
_refuse('writes outside the query (Keeper, the server log)', '''
generateSerialID logTrace
''')
_refuse("reads tables by name outside the query's FROM (Join tables, other hosts' schemas)", '''
hasColumnInTable joinGet joinGetOrNull
''')
_refuse("reads the server's part internals", '''
isMergeTreePartCoveredBy mergeTreePartInfo
''')
_refuse('reads model files configured on the server', '''
naiveBayesClassifier naiveBayesClassifierWithAllProbs naiveBayesClassifierWithProb
''')
_refuse('reads the embedded geobase files', '''
regionHierarchy regionIn regionToArea regionToCity regionToContinent regionToCountry
regionToDistrict regionToName regionToPopulation regionToTopContinent
''')
_refuse("is not needed to read the hub's data (query fuzzing)", "fuzzQuery")
_refuse('stalls the engine on purpose', '''
sleep sleepEachRow
''')

# ---- table functions (system.table_functions) -----------------------------------------------------
# Generators and inline data only: nothing that reads a file, a URL, another server, a program,
# another table by pattern or by name, or the store's internals.
ALLOWED_TABLE_FUNCTIONS = _names("""
numbers numbers_mt zeros zeros_mt generateSeries generate_series primes values view format null generateRandom
""")

REFUSED_TABLE_FUNCTIONS: dict[str, str] = {}


def _refuse_table(reason: str, text: str) -> None:
    for name in text.split():
        REFUSED_TABLE_FUNCTIONS[name] = reason


_refuse_table("reads or writes files on the server", """
file fileCluster filesystem deltaLakeLocal icebergLocal icebergLocalCluster paimonLocal""")
_refuse_table("reaches another server or service over the network", """
url urlCluster s3 s3Cluster gcs cosn oss hdfs hdfsCluster azureBlobStorage azureBlobStorageCluster
remote remoteSecure cluster clusterAllReplicas mysql postgresql mongodb redis jdbc odbc bigquery ytsaurus
deltaLake deltaLakeS3 deltaLakeAzure deltaLakeCluster deltaLakeS3Cluster deltaLakeAzureCluster hudi hudiCluster
iceberg icebergS3 icebergAzure icebergHDFS icebergCluster icebergS3Cluster icebergAzureCluster
icebergHDFSCluster paimon paimonS3 paimonAzure paimonHDFS paimonCluster paimonS3Cluster paimonAzureCluster
paimonHDFSCluster prometheusQuery prometheusQueryRange""")
_refuse_table("runs a program or reads the host process's objects", "executable python arrowstream")
_refuse_table("reads a database file of another engine", "sqlite")
_refuse_table("reads tables by pattern or by name past the system-table rule", """
merge loop dictionary timeSeriesData timeSeriesMetricFamilies timeSeriesMetrics timeSeriesSamples
timeSeriesSelector timeSeriesTags viewIfPermitted""")
_refuse_table("reads the store's part and index internals", """
mergeTreeIndex mergeTreeProjection mergeTreeTextIndex mergeTreeAnalyzeIndexes mergeTreeAnalyzeIndexesUUID
mergeTreeCodecBlockCounts""")
_refuse_table("reads the data of an INSERT, which a query has not", "input")
_refuse_table("is not needed to read the hub's data (query fuzzing, engine internals)", """
fuzzJSON fuzzQuery viewExplain SQLStandardValues eval""")

# ---- names followed by "(" that are not calls ------------------------------------------------------
# Aggregate function combinators: countIf, sumArray, uniqMerge, avgOrNull, quantilesStateIf...
COMBINATORS = ("SimpleState", "OrDefault", "Distinct", "Resample", "ForEach", "ArgMax", "ArgMin",
               "OrNull", "Tuple", "Merge", "State", "Array", "Null", "Map", "If")

# Data types with parameters: CAST(x AS Nullable(DateTime64(3, 'UTC'))), x::Decimal(10, 2).
TYPE_NAMES = _names("""
AggregateFunction Array BFloat16 Bool Date Date32 DateTime DateTime32 DateTime64 Decimal Decimal128 Decimal256
Decimal32 Decimal64 Dynamic Enum Enum16 Enum8 FixedString Float32 Float64 Geometry IPv4 IPv6 Int128 Int16 Int256
Int32 Int64 Int8 JSON LowCardinality Map Nothing Nullable Object QBit SimpleAggregateFunction String Time
Time64 Tuple UInt128 UInt16 UInt256 UInt32 UInt64 UInt8 UUID Variant
CHAR VARCHAR VARCHAR2 NCHAR NVARCHAR BINARY VARBINARY DEC NUMERIC FLOAT DOUBLE TIMESTAMP TEXT
""")

# Keywords after which "(" opens a subquery, a list or an expression: WHERE (a OR b), IN (1, 2),
# FROM (SELECT ...), OVER (PARTITION BY ...), GROUP BY ROLLUP(a, b), SELECT * EXCEPT (a).
KEYWORDS = _names("""
SELECT FROM WHERE PREWHERE HAVING QUALIFY JOIN ON USING AND OR NOT IN AS BY WITH THEN ELSE WHEN CASE EXISTS
ALL ANY SOME DISTINCT OVER FILTER LIMIT OFFSET UNION EXCEPT INTERSECT INTERVAL IS LIKE ILIKE BETWEEN GLOBAL
SAMPLE ROLLUP CUBE SETS COLUMNS REPLACE APPLY ARRAY FILL STEP TO INTERPOLATE DESCRIBE DESC EXPLAIN TABLE
WINDOW PARTITION ORDER GROUP
""")

_ALLOWED = frozenset(n.lower() for n in ALLOWED | AGGREGATES | ALLOWED_TABLE_FUNCTIONS | TYPE_NAMES | KEYWORDS)
_AGGREGATES = frozenset(n.lower() for n in AGGREGATES)
_COMBINATORS = tuple(sorted((c.lower() for c in COMBINATORS), key=len, reverse=True))
_REFUSED = {n.lower(): why for n, why in REFUSED.items()}
_REFUSED_TABLE = {n.lower(): why for n, why in REFUSED_TABLE_FUNCTIONS.items()}


def _aggregate_with_combinators(name: str) -> bool:
    if name in _AGGREGATES:
        return True
    return any(name.endswith(c) and len(name) > len(c) and _aggregate_with_combinators(name[:-len(c)])
               for c in _COMBINATORS)


def call_refusal(name: str) -> str | None:
    """Why a call of ``name`` is refused (one phrase), or None when it is allowed."""
    key = name.lower()
    if key in _ALLOWED or _aggregate_with_combinators(key):
        return None
    why = _REFUSED_TABLE.get(key) or _REFUSED.get(key)
    if why:
        return why
    return "is not on the list of functions and table functions the SQL interface allows (docs/sql.md)"


def unclassified(functions: list[str], table_functions: list[str]) -> tuple[list[str], list[str]]:
    """Names of an engine's functions and table functions that are neither allowed nor refused."""
    known = {n.lower() for n in ALLOWED | AGGREGATES | set(REFUSED)}
    known_tables = {n.lower() for n in ALLOWED_TABLE_FUNCTIONS | set(REFUSED_TABLE_FUNCTIONS)}
    return ([n for n in functions if n.lower() not in known],
            [n for n in table_functions if n.lower() not in known_tables])
