"""Edge auth: the Lambda@Edge viewer-request function that checks Cognito tokens in front of the reports.

Pure standard library, so `advising edge build` can zip this package with its configuration and
stay far below the 1 MB limit of viewer-request functions. Modules: `jwt_rs256` (signature),
`config` (bundled configuration), `handler` (CloudFront event in, request or response out).
"""
