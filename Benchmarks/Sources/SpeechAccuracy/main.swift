// Offline speech figures: pocketsphinx word error rate on synthesised caller lines heard over
// the telephone band (flite kal16 → 8 kHz → the recogniser's own 8 → 16 kHz upsampling), with
// the open-dictation model and with the phrase model the scripted policy builds from the
// example template; and the real-time factors of pocketsphinx, espeak-ng and flite.
// Usage: SpeechAccuracy TEMPLATE.yaml [--verbose]
import Conversation
import Foundation
import Speech

@main
enum SpeechAccuracy {
    /// What callers say to an outbound sales call: intents the policy acts on, objections, small talk.
    static let lines = [
        "please remove me from your list",
        "stop calling me",
        "take me off your list",
        "do not call this number again",
        "call me back tomorrow morning",
        "i'm busy right now",
        "can you call me later",
        "who is this",
        "is this a robot",
        "i'm not interested",
        "no thank you",
        "yes that sounds good",
        "sure go ahead",
        "how much does it cost",
        "it's too expensive",
        "i already have solar panels",
        "i rent my home",
        "wrong number",
        "i want to speak to a real person",
        "what company are you calling from",
    ]
    /// Phrasings no phrase list has verbatim: how the model does off its script.
    static let heldOut = [
        "please don't call me anymore",
        "i'm driving can you call back",
        "what is this about",
        "we're not interested thanks",
        "how long does the visit take",
        "my landlord handles that",
        "that sounds great",
        "i can't afford it",
        "can you call me next week",
        "you have the wrong number",
    ]

    static func main() async throws {
        let arguments = CommandLine.arguments.dropFirst()
        guard let templatePath = arguments.first else {
            print("usage: SpeechAccuracy TEMPLATE.yaml [--verbose]")
            exit(2)
        }
        let verbose = arguments.contains("--verbose")
        let policy = ScriptedPolicy(template: try PitchTemplate.load(path: templatePath))
        let flite = FliteSynthesizer()
        let recognizer = PocketSphinxRecognizer(configuration: .init(maximumSessions: 1))
        var fliteSeconds = 0.0
        var fliteAudioSeconds = 0.0
        for (set, lines) in [("phrasings the policy lists", self.lines), ("held-out phrasings", self.heldOut)] {
            var audio: [[Int16]] = []
            for line in lines {
                let start = ContinuousClock.now
                audio.append(try await flite.render(line))
                fliteSeconds += seconds(ContinuousClock.now - start)
            }
            let audioSeconds = Double(audio.reduce(0) { $0 + $1.count }) / 8_000
            fliteAudioSeconds += audioSeconds
            let references = lines.map(PhraseLanguageModel.words(of:))
            let referenceWords = references.reduce(0) { $0 + $1.count }
            print("\(set): \(lines.count) lines, \(referenceWords) words, \(String(format: "%.1f", audioSeconds)) s of 8 kHz audio (flite kal16)")

            for (name, phrases) in [("open dictation (en-us.lm.bin)", [String]()), ("phrase model (policy + template)", policy.phrases)] {
                // Load the decoder and the phrase model once, outside the timing. Every session starts
                // from the same cepstral means, so the order of the lines does not matter.
                _ = try await self.recognise([Int16](repeating: 0, count: 1_600), recognizer, phrases)
                var errors = 0
                var exact = 0
                var sameReply = 0
                var decodeSeconds = 0.0
                for (index, samples) in audio.enumerated() {
                    let start = ContinuousClock.now
                    let heard = try await self.recognise(samples, recognizer, phrases)
                    decodeSeconds += seconds(ContinuousClock.now - start)
                    let distance = self.editDistance(references[index], PhraseLanguageModel.words(of: heard))
                    errors += distance
                    if distance == 0 { exact += 1 }
                    let agrees = try await self.reply(policy, lines[index]) == self.reply(policy, heard)
                    if agrees { sameReply += 1 }
                    if verbose { print("  \(distance == 0 ? " " : "✗")\(agrees ? " " : "!") \(lines[index])  →  \(heard)") }
                }
                let paddedSeconds = audioSeconds + Double(audio.count) * 1.3
                print(String(
                    format: "  pocketsphinx, %@: WER %.1f%% (%d/%d), %d/%d lines exact, %d/%d answered as the words said would be, real-time factor %.3f",
                    name, 100 * Double(errors) / Double(referenceWords), errors, referenceWords, exact, audio.count, sameReply, audio.count,
                    decodeSeconds / paddedSeconds
                ))
            }
        }

        let espeak = EspeakSynthesizer()
        _ = try await espeak.render("warm up")
        var espeakSamples = 0
        let espeakStart = ContinuousClock.now
        for line in self.lines + self.heldOut { espeakSamples += try await espeak.render(line).count }
        let espeakSeconds = seconds(ContinuousClock.now - espeakStart)
        print(String(format: "espeak-ng synthesis to 8 kHz: real-time factor %.4f (%.1f s of audio)", espeakSeconds / (Double(espeakSamples) / 8_000), Double(espeakSamples) / 8_000))
        print(String(format: "flite kal16 synthesis to 8 kHz: real-time factor %.4f", fliteSeconds / fliteAudioSeconds))
    }

    /// Feeds one line in 20 ms frames between 300 ms of silence before and 1 s after, as a call would,
    /// and returns the utterance's text. The decode time includes the padding.
    static func recognise(_ samples: [Int16], _ recognizer: PocketSphinxRecognizer, _ phrases: [String]) async throws -> String {
        let session = try await recognizer.open(RecognitionOptions(phrases: phrases))
        let padded = [Int16](repeating: 0, count: 2_400) + samples + [Int16](repeating: 0, count: 8_000)
        for start in stride(from: 0, to: padded.count, by: 160) {
            session.feed(Array(padded[start..<min(padded.count, start + 160)]))
        }
        // Queued after the audio: the stream ends once every frame has been decoded.
        session.finalize()
        session.close()
        var finals: [String] = []
        for try await event in session.events {
            if case .final(let text) = event { finals.append(text) }
        }
        return finals.joined(separator: " ")
    }

    /// The scripted policy's answer to `line` as the caller's first turn: what it says and does.
    static func reply(_ policy: ScriptedPolicy, _ line: String) async throws -> [String] {
        let context = CallContext(callID: UUID(), lead: ["first_name": "Ana", "city": "Springfield"], timeZone: .gmt, startedAt: Date(timeIntervalSince1970: 0))
        var outputs: [String] = []
        for try await output in try policy.start(context).reply(to: line, history: []) {
            switch output {
            case .text(let text): outputs.append(text)
            // A callback's phrase is the caller's words; only the kind of action counts.
            case .action(.scheduleCallback(let request)): outputs.append("callback \(String(describing: request.time))")
            case .action(let action): outputs.append("\(action)")
            }
        }
        return outputs
    }

    static func editDistance(_ reference: [String], _ hypothesis: [String]) -> Int {
        var previous = Array(0...hypothesis.count)
        for (i, word) in reference.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: hypothesis.count)
            for (j, heard) in hypothesis.enumerated() {
                current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (word == heard ? 0 : 1))
            }
            previous = current
        }
        return previous[hypothesis.count]
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
