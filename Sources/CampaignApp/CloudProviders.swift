import CampaignCore
import ChatCompletions
import Conversation
import Deepgram
import Foundation
import Logging
import NIOSSL
import Speech

/// The speech and language providers an engine uses, made from a campaign's `providers`
/// settings and the environment. The offline engines are always there: they are the default,
/// and the fallback of a cloud provider that fails mid-call.
///
/// Environment (a `…_FILE` variable names a file holding the secret instead):
/// - `DEEPGRAM_API_KEY`; `DEEPGRAM_STT_DOMAIN`, the API root (default `https://api.deepgram.com`);
/// - `OPENAI_API_KEY` (optional for a local server); `OPENAI_BASE_URL` (default
///   `https://api.openai.com/v1`); `OPENAI_MODEL` (default `gpt-4o`; the campaign's `llm_model` wins);
/// - `DEEPGRAM_CA_FILE`, `OPENAI_CA_FILE`: a PEM file of the authorities the provider's TLS
///   trusts instead of the system's roots (an on-premises install, a gateway with a private CA).
public struct EngineProviders: Sendable {
    public var recognizer: any SpeechRecognizer
    public var synthesizer: any SpeechSynthesizer
    public var fallbackRecognizer: (any SpeechRecognizer)?
    public var fallbackSynthesizer: (any SpeechSynthesizer)?
    public var policy: @Sendable (PitchTemplate) -> any DialoguePolicy
    /// The model's post-call analysis (with `language: openai`); nil for the lexicon's only.
    public var analyzer: (@Sendable (PitchTemplate) -> LLMAnalyzer)?
    /// For logs and `campaign check`: e.g. `speech deepgram nova-3/aura-2-thalia-en, language openai gpt-4o`.
    public var summary: String
    /// Ends what the providers keep open between calls, once the engine has stopped (Deepgram's
    /// speak sockets say `Close` first, as Deepgram asks).
    public var close: @Sendable () -> Void = {}

    public struct MissingCredential: Error, CustomStringConvertible {
        public var description: String
    }

    /// Offline only: pocketsphinx, espeak-ng and the script.
    public static func offline(recognizer: any SpeechRecognizer, synthesizer: any SpeechSynthesizer) -> EngineProviders {
        EngineProviders(
            recognizer: recognizer, synthesizer: synthesizer, policy: { ScriptedPolicy(template: $0) }, summary: "speech offline, language scripted")
    }

    /// The providers `settings` name, the offline engines behind any cloud one.
    public static func make(
        _ settings: ProviderSettings, environment: [String: String] = ProcessInfo.processInfo.environment, offlineRecognizer: any SpeechRecognizer,
        offlineSynthesizer: any SpeechSynthesizer, logger: Logger
    ) throws -> EngineProviders {
        var providers = EngineProviders.offline(recognizer: offlineRecognizer, synthesizer: offlineSynthesizer)
        var summary: [String] = []
        switch settings.speech {
        case .offline:
            summary.append("speech offline")
        case .deepgram:
            let key = try Self.secret("DEEPGRAM_API_KEY", environment: environment)
            let root = environment["DEEPGRAM_STT_DOMAIN"].flatMap { $0.isEmpty ? nil : $0 } ?? "https://api.deepgram.com"
            guard let base = URL(string: root), base.scheme != nil, base.host != nil else {
                throw MissingCredential(description: "DEEPGRAM_STT_DOMAIN is not a URL such as https://api.deepgram.com")
            }
            let authority = try ProviderHTTP.authorityFile("DEEPGRAM_CA_FILE", environment: environment)
            let endpoint = DeepgramEndpoint(baseURL: base, credential: .apiKey(key), trustRoots: authority.map { .file($0) } ?? .default)
            var listen = ListenOptions()
            if let model = settings.sttModel { listen.model = model }
            let ttsModel = settings.ttsModel ?? "aura-2-thalia-en"
            providers.recognizer = DeepgramRecognizer(endpoint: endpoint, options: listen, logger: logger)
            let synthesizer = DeepgramSynthesizer(
                endpoint: endpoint, model: ttsModel, transport: settings.ttsOverREST ? .rest : .webSocket, http: ProviderHTTP.client(trusting: authority),
                logger: logger)
            providers.synthesizer = synthesizer
            providers.close = { synthesizer.shutdown() }
            providers.fallbackRecognizer = offlineRecognizer
            providers.fallbackSynthesizer = offlineSynthesizer
            summary.append("speech deepgram \(listen.model)/\(ttsModel)")
        }
        switch settings.language {
        case .scripted:
            summary.append("language scripted")
        case .openai:
            let client = try Self.chatClient(settings, environment: environment, logger: logger)
            let model = client.endpoint.model
            providers.policy = { LLMPolicy(template: $0, client: client) }
            // The analysis is after the call: it may take its time.
            var analysis = client
            analysis.timeouts = ChatTimeouts(firstToken: .seconds(20), deadline: .seconds(60))
            providers.analyzer = { [analysis] in LLMAnalyzer(template: $0, client: analysis) }
            summary.append("language openai \(model)")
        }
        providers.summary = summary.joined(separator: ", ")
        return providers
    }

    /// The chat-completions client the environment and the settings describe (for a voice turn:
    /// the settings' first-token time, a 20 s deadline).
    public static func chatClient(_ settings: ProviderSettings, environment: [String: String], logger: Logger) throws -> ChatCompletionsClient {
        let base = environment["OPENAI_BASE_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "https://api.openai.com/v1"
        guard let url = URL(string: base), url.scheme != nil, url.host != nil else {
            throw MissingCredential(description: "OPENAI_BASE_URL is not a URL such as https://api.openai.com/v1")
        }
        // A local server (Ollama, vLLM, llama.cpp) may take no key; OpenAI itself always does.
        let key = try? Self.secret("OPENAI_API_KEY", environment: environment)
        if key == nil, url.host?.hasSuffix("openai.com") == true { _ = try Self.secret("OPENAI_API_KEY", environment: environment) }
        let model = settings.llmModel ?? environment["OPENAI_MODEL"].flatMap { $0.isEmpty ? nil : $0 } ?? "gpt-4o"
        let endpoint = ChatEndpoint(
            baseURL: base, apiKey: key, model: model, tokenLimitField: TokenLimitField(rawValue: settings.tokenLimitField) ?? .maxTokens)
        let authority = try ProviderHTTP.authorityFile("OPENAI_CA_FILE", environment: environment)
        return ChatCompletionsClient(
            endpoint: endpoint, timeouts: ChatTimeouts(firstToken: settings.firstToken, deadline: .seconds(20)), http: ProviderHTTP.client(trusting: authority),
            logger: logger)
    }

    /// A secret from `NAME_FILE` (a file) or `NAME` (the environment).
    static func secret(_ name: String, environment: [String: String]) throws -> String {
        do {
            return try SecretSource(environment: name, file: environment["\(name)_FILE"]).read(environment: environment)
        } catch {
            throw MissingCredential(description: "the campaign's providers need \(name): set it in the environment, or \(name)_FILE to a file holding it")
        }
    }
}
