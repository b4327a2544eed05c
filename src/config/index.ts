// Public surface of the config module; the rest of the app imports from here, not the individual files.
export {
  CONFIG_LEAVES,
  LOG_LEVELS,
  PROFILES,
  SECRET_MASK,
  SECRET_PATHS,
  configSchema,
  isSecretPath,
  maskUrl,
  maskValue,
  type Config,
  type Leaf,
  type LeafKind,
  type LogLevel,
  type Profile,
  type SecretPath,
} from "./schema.ts";
export {
  CONFIG_FILE_ENV,
  ConfigError,
  ENV_PREFIX,
  describeSource,
  envVarName,
  flagName,
  isLoopbackHost,
  loadConfig,
  type LoadConfigOptions,
  type LoadedConfig,
  type Source,
  type SourceKind,
} from "./load.ts";
export { renderConfig, type RenderOptions } from "./render.ts";
